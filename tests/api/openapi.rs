//! The committed spec is what the server serves.

#[tokio::test]
async fn committed_spec_is_up_to_date() {
    let generated = hyperfleet_api::spec_json().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/hyperfleet.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/hyperfleet.json is out of date; regenerate it with:\n  cargo run -q -- openapi > openapi/hyperfleet.json"
    );
    let spec: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(id.contains('_'), "{id} is not <resource>_<verb>");
        }
    }
}
