//! Dedup keys are namespaced by source: a manual alert that reuses a system
//! alert's key is a manual alert of its own and leaves the system one alone.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

async fn a_manual_alert_never_updates_a_system_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.post("/api/v1/vms/test/resume", json!({})).await; // fails for good: it is running
    app.wait_status(r.body["id"].as_str().unwrap(), &["failed"]).await;
    let firing = app.get("/api/v1/alerts?status=firing&source=operation").await.body;
    let system = firing["items"][0].clone();
    let key = system["dedup_key"].as_str().unwrap().to_owned();
    assert_eq!(key, "operation:hv1:vm.resume:test");

    let manual = json!({"severity": "info", "title": "nothing to see", "message": "m", "dedup_key": key});
    let r = app.post("/api/v1/alerts", manual).await;
    assert_eq!(r.status, 201, "a new alert, not an update: {}", r.body);
    assert_ne!(r.body["id"], system["id"]);
    assert_eq!(r.body["dedup_key"], format!("manual:{key}"));
    assert_eq!(r.body["source"], "manual");

    let after = app.get(&format!("/api/v1/alerts/{}", system["id"].as_str().unwrap())).await.body["alert"].clone();
    for field in ["severity", "title", "message", "occurrences", "status"] {
        assert_eq!(after[field], system[field], "{field} of the system alert changed: {after:#}");
    }
    app.stop().await;
}

crate::on_both_backends!(a_manual_alert_never_updates_a_system_one);
