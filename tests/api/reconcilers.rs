//! The scheduler's reconcilers record their last run where the API shows it.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

async fn each_reconciler_shows_its_last_run(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { scheduler: true, ..Options::default() }).await;
    let r = app.post("/api/v1/schedules", json!({"name": "often", "cron": "* * * * * *", "kind": "noop"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    app.wait_for(|| async {
        let items = app.get("/api/v1/reconcilers").await.body["items"].clone();
        if items.as_array().unwrap().len() < 4 {
            return false;
        }
        let fire = items.as_array().unwrap().iter().find(|r| r["name"] == "fire_schedules").cloned();
        fire.is_some_and(|f| f["summary"].as_str().unwrap_or_default().starts_with("fired"))
    })
    .await;
    let r = app.get("/api/v1/reconcilers").await;
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["audit_checkpoint", "fire_schedules", "fleet_monitor", "route_alerts"], "{:#}", r.body);
    let checkpoint = r.body["items"][0]["summary"].as_str().unwrap();
    assert!(checkpoint.starts_with("checkpoint at event "), "{checkpoint}");
    for item in r.body["items"].as_array().unwrap() {
        assert_eq!(item["ok"], true, "{item:#}");
        assert!(item["runs"].as_i64().unwrap() >= 1, "{item:#}");
        assert!(item["scheduler"].as_str().unwrap().starts_with("scheduler-"));
    }
    // A viewer may read them; nobody may without a token.
    assert_eq!(app.request_as(None, "GET", "/api/v1/reconcilers", None, &[]).await.status, 401);
    app.stop().await;
}

crate::on_both_backends!(each_reconciler_shows_its_last_run);
