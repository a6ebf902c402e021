//! Closed sets are enums from the row to the spec: the OpenAPI document
//! declares them, and a stored value the code does not know fails the read
//! loudly (500 `corrupt_record`, naming the column and the value) instead of
//! being read as some default.

use crate::helpers::{Backend, Options, TestApp};

async fn an_unknown_stored_value_is_a_loud_error(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let insert = "INSERT INTO vms (host, name, uuid, state, state_reason, vcpus, memory_kib, autostart, persistent, \
                  updated_at) VALUES ('hv1', 'edited', 'u', 'bogus', 'user', 1, 1024, FALSE, TRUE, $1)";
    let now = hyperfleet_core::Timestamp::now();
    let store = hyperfleet_core::store::Store::connect(&app.database_url, hyperfleet_core::store::PoolConfig::new(1))
        .await
        .unwrap();
    match backend {
        Backend::Sqlite => {
            sqlx::query(insert).bind(now).execute(store.sqlite_pool().unwrap()).await.unwrap();
        }
        Backend::Postgres => {
            sqlx::query(insert).bind(now).execute(store.postgres_pool().unwrap()).await.unwrap();
        }
    }
    let r = app.get("/api/v1/vms").await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.body["code"], "corrupt_record", "{}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("bogus") && message.contains("state") && message.contains("a VM state"), "{message}");
    store.close().await;
}

crate::on_both_backends!(an_unknown_stored_value_is_a_loud_error);

#[tokio::test]
async fn the_spec_declares_every_closed_set_as_an_enum() {
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("openapi/hyperfleet.json").unwrap()).unwrap();
    let schemas = &spec["components"]["schemas"];
    let expected = [
        ("OperationStatus", "retrying"),
        ("OperationKind", "vm.shutdown"),
        ("ErrorClass", "transient"),
        ("AttemptOutcome", "abandoned"),
        ("VmState", "shutoff"),
        ("HealthStatus", "warn"),
        ("Severity", "critical"),
        ("AlertStatus", "firing"),
        ("Role", "operator"),
        ("MissedTicks", "run_once"),
        ("HostStatus", "degraded"),
    ];
    for (name, value) in expected {
        let values = schemas[name]["enum"].as_array().unwrap_or_else(|| panic!("{name} is not an enum"));
        assert!(values.iter().any(|v| v == value), "{name}: {values:?}");
    }
    let view = &schemas["OperationView"]["properties"];
    assert_eq!(view["status"]["$ref"], "#/components/schemas/OperationStatus");
    assert_eq!(view["kind"]["$ref"], "#/components/schemas/OperationKind");
}
