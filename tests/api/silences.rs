//! Silences with regular expressions: patterns past the size limits are
//! refused when created (they used to be accepted and recompiled for every
//! alert event, stalling the database), and patterns within them mute as
//! specified.

use serde_json::json;

use crate::{
    alerts::{raise, spawn, wait_detail},
    helpers::Backend,
    receivers::HttpReceiver,
};

fn silence(matchers: serde_json::Value) -> serde_json::Value {
    json!({"matchers": matchers, "ends_at": "2099-01-01T00:00:00Z", "comment": "maintenance"})
}

async fn regex_silences_are_bounded_and_still_mute(backend: Backend) {
    let r = HttpReceiver::start(&[], 200).await;
    let config = format!("[[alerts.channels]]\nname = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"\n", r.url("/hook"));
    let app = spawn(backend, &config, &[]).await;

    for value in [r"\w{100}".to_owned(), "a".repeat(257)] {
        let body = silence(json!([{"name": "host", "op": "!~", "value": value}]));
        let refused = app.post("/api/v1/silences", body).await;
        assert_eq!((refused.status, refused.body["code"].as_str()), (422, Some("invalid_matcher")), "{}", refused.body);
    }
    assert_eq!(app.get("/api/v1/silences?expired=true").await.body["items"], json!([]), "nothing was stored");

    let heavy: Vec<_> = (0..15).map(|_| json!({"name": "host", "op": "!~", "value": "[A-Za-z0-9_]{100}"})).collect();
    let mut matchers = heavy.clone();
    matchers.push(json!({"name": "title", "op": "=~", "value": "Disk .* full"}));
    let created = app.post("/api/v1/silences", silence(json!(matchers))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["matchers"][15]["value"], "Disk .* full");

    let muted = raise(&app, json!({"severity": "warning", "title": "Disk /var full", "message": "m"})).await;
    let sent = raise(&app, json!({"severity": "warning", "title": "Load high", "message": "m"})).await;
    let status = |d: &serde_json::Value| d["notifications"][0]["status"].as_str().map(str::to_owned);
    let d = wait_detail(&app, muted["id"].as_str().unwrap(), |d| status(d).is_some()).await;
    assert_eq!(
        (status(&d).as_deref(), d["notifications"][0]["reason"].as_str()),
        (Some("suppressed"), Some("silenced"))
    );
    r.wait_for("/hook", 1).await;
    let d = wait_detail(&app, sent["id"].as_str().unwrap(), |d| status(d).as_deref() == Some("delivered")).await;
    assert_eq!(d["alert"]["title"], "Load high");
}

crate::on_both_backends!(regex_silences_are_bounded_and_still_mute);
