//! An alert's history is paged: the detail shows a bounded first page of its
//! events and notifications, and cursors walk the rest, oldest first.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

async fn alert_history_is_paged(backend: Backend) {
    // A channel that wants critical only: every event of an info alert is a suppressed notification.
    let config = "[[alerts.channels]]\nname = \"ops\"\ntype = \"webhook\"\nmin_severity = \"critical\"\n\
                  url = \"http://127.0.0.1:9/hook\"\n";
    let options = Options { scheduler: true, config: Some(config.into()), ..Options::default() };
    let app = TestApp::spawn_with(backend, options).await;
    let body = json!({"severity": "info", "title": "flapping", "message": "again", "dedup_key": "flap"});
    let mut id = String::new();
    for _ in 0..120 {
        let r = app.post("/api/v1/alerts", body.clone()).await;
        assert!(r.status == 201 || r.status == 200, "{}", r.body);
        id = r.body["id"].as_str().unwrap().to_owned();
    }
    let detail = app.get(&format!("/api/v1/alerts/{id}")).await.body;
    assert_eq!(detail["alert"]["occurrences"], 120);
    assert_eq!(detail["events"].as_array().unwrap().len(), 50, "a bounded first page");
    assert!(detail["events_next_cursor"].is_string());
    let small = app.get(&format!("/api/v1/alerts/{id}?limit=5")).await.body;
    assert_eq!(small["events"].as_array().unwrap().len(), 5);

    let events = app.every_page(&format!("/api/v1/alerts/{id}/events"), 50).await;
    assert_eq!(events.len(), 120, "every event once");
    assert_eq!(events[0]["kind"], "fired");
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first, no repeats");

    app.wait_for(|| async {
        let r = app.get(&format!("/api/v1/alerts/{id}")).await.body;
        r["suppressed"][0]["count"] == 120
    })
    .await;
    let notifications = app.every_page(&format!("/api/v1/alerts/{id}/notifications"), 50).await;
    assert_eq!(notifications.len(), 120);
    assert!(notifications.iter().all(|n| n["reason"] == "below_severity"));
    let r = app.get(&format!("/api/v1/alerts/{id}/events?limit=501")).await;
    assert_eq!(r.status, 400);
    let missing = app.get("/api/v1/alerts/01938a6e-0000-7000-8000-000000000000/events").await;
    assert_eq!(missing.status, 404);
    app.stop().await;
}

crate::on_both_backends!(alert_history_is_paged);
