//! The `test:///default` VM through every power action, with the inventory
//! following each step.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

async fn power_cycle(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, Options { libvirt_uri: Some("test:///default".into()), ..Options::default() })
            .await;
    // The default driver's VM may have been left in any state by a previous run in this process.
    if app.vm_state("test").await != "running" {
        let r = app.post("/api/v1/vms/test/destroy", json!({})).await;
        app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
        let r = app.post("/api/v1/vms/test/start", json!({})).await;
        app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded"]).await;
    }
    let steps = [
        ("shutdown", json!({"timeout_s": 5}), "shutoff"),
        ("start", json!({}), "running"),
        ("reboot", json!({}), "running"),
        ("suspend", json!({}), "paused"),
        ("resume", json!({}), "running"),
        ("destroy", json!({}), "shutoff"),
        ("start", json!({}), "running"),
    ];
    for (action, body, state) in steps {
        let r = app.post(&format!("/api/v1/vms/test/{action}"), body).await;
        assert_eq!(r.status, 202, "{action}: {}", r.body);
        assert_eq!(r.body["kind"], format!("vm.{action}"));
        let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
        assert_eq!(op["status"], "succeeded", "{action}: {op:#}");
        assert_eq!(app.vm_state("test").await, state, "after {action}");
    }
    let vms = app.get("/api/v1/vms").await;
    let test = vms.body["items"].as_array().unwrap().iter().find(|v| v["name"] == "test").unwrap().clone();
    assert_eq!(test["host"], "hv1");
    assert!(test["vcpus"].as_i64().unwrap() >= 1);
    assert!(test["memory_kib"].as_i64().unwrap() > 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_test_vm_power_cycle_on_both_backends() {
    // One test for both backends: `test:///default` is shared by the process,
    // so the two must not run at the same time.
    power_cycle(Backend::Sqlite).await;
    power_cycle(Backend::Postgres).await;
}

async fn shutdown_of_a_missing_vm_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.post("/api/v1/vms/ghost/shutdown", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["code"], "vm_not_found");
    app.stop().await;
}

crate::on_both_backends!(shutdown_of_a_missing_vm_is_not_found);
