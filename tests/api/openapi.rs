//! The committed spec is what the server serves.

#[tokio::test]
async fn committed_spec_is_up_to_date() {
    let generated = hyperfleet_api::spec_json().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/hyperfleet.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/hyperfleet.json is out of date; regenerate it with:\n  cargo run -q -- openapi > /tmp/hyperfleet.json && mv /tmp/hyperfleet.json openapi/hyperfleet.json"
    );
    let spec: serde_json::Value = serde_json::from_str(&generated).unwrap();
    // serde_json keeps the last of duplicate keys; generators reject them or drop one.
    assert!(!has_duplicate_keys(&generated), "the spec has duplicate JSON keys (two responses with one status?)");
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(id.contains('_'), "{id} is not <resource>_<verb>");
        }
    }
}

/// Whether any JSON object in `text` repeats a key (serde_json silently keeps the last).
fn has_duplicate_keys(text: &str) -> bool {
    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
    struct Check;
    impl<'de> Visitor<'de> for Check {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut dup = false;
            while let Some(key) = map.next_key::<String>()? {
                dup |= !seen.insert(key);
                dup |= map.next_value::<Dup>()?.0;
            }
            Ok(dup)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut dup = false;
            while let Some(d) = seq.next_element::<Dup>()? {
                dup |= d.0;
            }
            Ok(dup)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    struct Dup(bool);
    impl<'de> serde::Deserialize<'de> for Dup {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Check).map(Dup)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(Check).unwrap()
}
