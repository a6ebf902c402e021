//! Deliveries and crashed workers: a send recorded before the crash is not
//! repeated; a worker killed mid-send is retried by another (the documented
//! at-least-once window, with the same delivery id both times).

use std::time::Duration;

use serde_json::json;

use crate::{
    helpers::{Backend, Options, TestApp},
    receivers::HttpReceiver,
};

/// What a worker that died right after sending leaves behind: the send
/// recorded on the notification, the attempt unfinished. The retry must not send again.
async fn a_send_recorded_before_a_crash_is_not_repeated(backend: Backend) {
    let r = HttpReceiver::start(&[], 200).await;
    let config = format!("[[alerts.channels]]\nname = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"\n", r.url("/hook"));
    let options = Options { worker: false, scheduler: true, config: Some(config), ..Options::default() };
    let mut app = TestApp::spawn_with(backend, options).await;
    let t = app.post("/api/v1/alerts/test", json!({"channel": "hooks"})).await;
    assert_eq!(t.status, 202, "{}", t.body);
    let item = &t.body["items"][0];
    let op = item["operation_id"].as_str().unwrap().to_owned();
    let notification = hyperfleet_core::NotificationId::parse(item["notification_id"].as_str().unwrap()).unwrap();
    let store = hyperfleet_core::store::Store::connect(&app.database_url, hyperfleet_core::store::PoolConfig::new(2))
        .await
        .unwrap();
    store.mark_delivered(notification, "HTTP 200 (sent before the worker died)").await.unwrap();
    app.spawn_worker_process();
    let done = app.wait_status(&op, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["result"]["already_delivered"], true, "{done:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(r.all().is_empty(), "sent again: {:?}", r.all());
}

/// The window that stays at least once: a worker killed while the peer holds
/// the request. Another worker takes the delivery back when the lease expires
/// and sends it again, with the same delivery id for the receiver to dedupe.
async fn a_worker_killed_mid_send_is_retried_by_another(backend: Backend) {
    let r = HttpReceiver::start(&[crate::receivers::HANG], 200).await;
    let config = format!(
        "[[alerts.channels]]\nname = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout_s = 60\n",
        r.url("/hook")
    );
    let options = Options { worker: false, scheduler: true, config: Some(config), lease_s: 3, ..Options::default() };
    let mut app = TestApp::spawn_with(backend, options).await;
    let first = app.spawn_worker_process();
    let t = app.post("/api/v1/alerts/test", json!({"channel": "hooks"})).await;
    let op = t.body["items"][0]["operation_id"].as_str().unwrap().to_owned();
    r.wait_for("/hook", 1).await;
    app.kill_worker(first);
    app.spawn_worker_process();
    let done = app.wait_status(&op, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0]["outcome"], "abandoned");
    let got = r.on("/hook");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].headers["x-hyperfleet-delivery"], got[1].headers["x-hyperfleet-delivery"]);
}

crate::on_both_backends!(
    a_send_recorded_before_a_crash_is_not_repeated,
    a_worker_killed_mid_send_is_retried_by_another
);
