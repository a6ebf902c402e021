//! Retention: finished operations, their attempts, health runs and resolved alerts past their
//! keep time are pruned by the `ledger.prune` operation; recent work, recent
//! failures and anything a kept retry points to stay.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

async fn prune_keeps_what_it_should(backend: Backend) {
    let env = vec![("HYPERFLEET__RETENTION__ALERTS_DAYS".to_owned(), "90".to_owned())];
    let clock = hyperfleet_core::time::Clock::adjustable();
    let app = TestApp::spawn_with(backend, Options { env, clock: Some(clock.clone()), ..Options::default() }).await;
    // What happens now is old by the time the prune runs, a hundred days later.
    // Fired by a schedule: once pruned, the schedule still lists (without its last outcome).
    let r = app.post("/api/v1/schedules", json!({"name": "nightly", "cron": "0 0 1 1 *", "kind": "noop"})).await;
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", r.body["id"].as_str().unwrap()), json!({})).await;
    let old_ok = r.body["id"].as_str().unwrap().to_owned();
    let r = app.post("/api/v1/vms/test/resume", json!({})).await; // fails: it is running
    let old_failed = r.body["id"].as_str().unwrap().to_owned();
    let r = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
    let health = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    for id in [&old_ok, &old_failed, &health] {
        app.wait_status(id, &["succeeded", "failed"]).await;
    }
    let alert = |title: &'static str| {
        let app = &app;
        async move {
            let r = app.post("/api/v1/alerts", json!({"severity": "info", "title": title, "message": "m"})).await;
            let id = r.body["id"].as_str().unwrap().to_owned();
            if title.ends_with("resolved") {
                app.post(&format!("/api/v1/alerts/{id}/resolve"), json!({})).await;
            }
            id
        }
    };
    let old_resolved = alert("old, resolved").await;
    let old_firing = alert("old, firing").await;

    clock.advance(std::time::Duration::from_secs(86_400 * 100));
    let recent_ok = app.noop(0, 0).await;
    app.wait_status(&recent_ok, &["succeeded"]).await;
    let r = app.post(&format!("/api/v1/operations/{old_failed}/retry"), json!({})).await;
    let retry = r.body["id"].as_str().unwrap().to_owned();
    app.wait_status(&retry, &["succeeded", "failed"]).await;
    let alerts = [old_resolved, alert("recent, resolved").await, old_firing];

    let r = app.post("/api/v1/schedules", json!({"name": "prune", "cron": "0 0 1 1 *", "kind": "ledger.prune"})).await;
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", r.body["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    // The old success and the old health run's operation; not the old failure (a kept retry points to it).
    assert_eq!(op["result"]["operations"], 2, "only the old successes: {op:#}");
    assert_eq!(op["result"]["attempts"], 2);
    assert_eq!(op["result"]["health_runs"], 1);
    assert_eq!(op["result"]["alerts"], 1, "only the old resolved alert");
    assert!(op["result"]["duration_ms"].is_u64());

    assert_eq!(app.get(&format!("/api/v1/operations/{old_ok}")).await.status, 404);
    assert_eq!(app.get(&format!("/api/v1/operations/{recent_ok}")).await.status, 200, "recent work stays");
    assert_eq!(app.get(&format!("/api/v1/operations/{old_failed}")).await.status, 200, "a kept retry points to it");
    assert_eq!(app.get(&format!("/api/v1/health/runs/{health}")).await.status, 404);
    let mut kept = Vec::new();
    for id in &alerts {
        kept.push(app.get(&format!("/api/v1/alerts/{id}")).await.status);
    }
    assert_eq!(kept, [404, 200, 200], "firing alerts are kept however old");
    let r = app.get("/api/v1/schedules").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let nightly = r.body["items"].as_array().unwrap().iter().find(|s| s["name"] == "nightly").unwrap().clone();
    assert_eq!((nightly["last_operation_id"].as_str(), nightly.get("last_outcome")), (Some(old_ok.as_str()), None));
    app.stop().await;
}

crate::on_both_backends!(prune_keeps_what_it_should);
