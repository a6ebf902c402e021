//! The notification policy, seen from a real webhook receiver: dedup, repeat
//! intervals, resolve, acknowledgement, silences and escalation each change
//! what is sent exactly as specified. Also: the sources wired into alerting,
//! bad input, and the `hyperfleet alert` command.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    alerts::{raise, spawn, wait_detail},
    helpers::{Backend, Options, TestApp},
    receivers::HttpReceiver,
};

fn hook(r: &HttpReceiver) -> String {
    format!(
        "[[alerts.channels]]\nname = \"hooks\"\ntype = \"webhook\"\nmin_severity = \"warning\"\nurl = \"{}\"\n",
        r.url("/hook")
    )
}

/// (event, status, reason) of each notification of the alert, once there are `n`.
async fn notifications(app: &TestApp, id: &str, n: usize) -> Vec<(String, String, String)> {
    let d = wait_detail(app, id, |d| d["notifications"].as_array().unwrap().len() >= n).await;
    d["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or("").to_owned();
            (s("event"), s("status"), s("reason"))
        })
        .collect()
}

fn suppressed(reason: &str) -> (String, String, String) {
    ("firing".into(), "suppressed".into(), reason.into())
}

/// Titles of what the receiver got, with their event.
fn sent(r: &HttpReceiver) -> Vec<(String, String)> {
    r.on("/hook")
        .iter()
        .map(|x| (x.json["event"].as_str().unwrap().to_owned(), x.json["alert"]["title"].as_str().unwrap().to_owned()))
        .collect()
}

async fn the_policy_decides_what_is_sent(backend: Backend) {
    let r = HttpReceiver::start(&[], 200).await;
    let app = spawn(backend, &hook(&r), &[("HYPERFLEET__ALERTS__REPEAT_S__WARNING", "2")]).await;
    let a = json!({"severity": "warning", "title": "A", "message": "first", "dedup_key": "policy-a"});

    // First firing: sent.
    let first = raise(&app, a.clone()).await;
    let id = first["id"].as_str().unwrap();
    r.wait_for("/hook", 1).await;
    // Dedup: the same key updates the firing alert, within the repeat interval: a cooldown.
    let again =
        raise(&app, json!({"severity": "warning", "title": "A", "message": "second", "dedup_key": "policy-a"})).await;
    assert_eq!(again["id"], id);
    assert_eq!(again["occurrences"], 2);
    assert_eq!(again["message"], "second");
    assert_eq!(notifications(&app, id, 2).await[1], suppressed("cooldown"));
    // After the interval: sent again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    raise(&app, a.clone()).await;
    r.wait_for("/hook", 2).await;
    assert_ne!(notifications(&app, id, 3).await[2].1, "suppressed");

    // Below the channel's severity: recorded, counted, not sent.
    let info = raise(&app, json!({"severity": "info", "title": "I", "message": "m"})).await;
    assert_eq!(notifications(&app, info["id"].as_str().unwrap(), 1).await, [suppressed("below_severity")]);

    // Acknowledged: no more repeats.
    let acked = app.post(&format!("/api/v1/alerts/{id}/ack"), json!({})).await;
    assert_eq!(acked.status, 200, "{}", acked.body);
    assert!(acked.body["acknowledged_by"].as_str().is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    raise(&app, a.clone()).await;
    assert_eq!(notifications(&app, id, 4).await[3], suppressed("acknowledged"));

    // Resolve: sent (webhooks get resolves by default), then a new occurrence is a new alert.
    let resolved = app.post(&format!("/api/v1/alerts/{id}/resolve"), json!({})).await;
    assert_eq!(resolved.body["status"], "resolved");
    r.wait_for("/hook", 3).await;
    let new = raise(&app, a.clone()).await;
    assert_ne!(new["id"], id);
    assert_eq!(new["occurrences"], 1);
    r.wait_for("/hook", 4).await;
    let ack_resolved = app.post(&format!("/api/v1/alerts/{id}/ack"), json!({})).await;
    assert_eq!(ack_resolved.status, 409);
    assert_eq!(ack_resolved.body["code"], "alert_not_firing");

    // A silence mutes, but the alert is recorded; once expired, the next occurrence is sent.
    let s = app
        .post(
            "/api/v1/silences",
            json!({"matchers": [{"name": "team", "value": "db"}, {"name": "title", "op": "=~", "value": "B.*"}],
                   "ends_at": "2099-01-01T00:00:00Z", "comment": "db maintenance"}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.body["state"], "active");
    let silence = s.body["id"].as_str().unwrap();
    let b = json!({"severity": "warning", "title": "B", "message": "m", "labels": {"team": "db"}});
    let bid = raise(&app, b.clone()).await["id"].as_str().unwrap().to_owned();
    assert_eq!(notifications(&app, &bid, 1).await, [suppressed("silenced")]);
    let d = app.get(&format!("/api/v1/alerts/{bid}")).await.body;
    assert_eq!(d["notifications"][0]["silence_id"], silence);
    assert_eq!(d["alert"]["status"], "firing");
    let expired = app.request("DELETE", &format!("/api/v1/silences/{silence}"), None, &[]).await;
    assert_eq!(expired.body["state"], "expired");
    assert_eq!(app.get("/api/v1/silences").await.body["items"], json!([]));
    assert_eq!(app.get("/api/v1/silences?expired=true").await.body["items"][0]["id"], silence);
    raise(&app, b).await;
    r.wait_for("/hook", 5).await;

    // Escalation (warning → critical) is sent at once, cooldown or not.
    let c = raise(&app, json!({"severity": "warning", "title": "C", "message": "m"})).await;
    r.wait_for("/hook", 6).await;
    raise(&app, json!({"severity": "critical", "title": "C", "message": "worse"})).await;
    r.wait_for("/hook", 7).await;
    let d = wait_detail(&app, c["id"].as_str().unwrap(), |d| d["events"].as_array().unwrap().len() == 2).await;
    assert_eq!(d["events"][1]["kind"], "escalated");
    assert_eq!(d["alert"]["severity"], "critical");

    // Exactly these were sent, in this order.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expected = [
        ("firing", "A"),
        ("firing", "A"),
        ("resolved", "A"),
        ("firing", "A"),
        ("firing", "B"),
        ("firing", "C"),
        ("firing", "C"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(e, t)| ((*e).into(), (*t).into())).collect();
    assert_eq!(sent(&r), expected);
    // The suppressed ones are counted by reason.
    let d = app.get(&format!("/api/v1/alerts/{id}")).await.body;
    assert_eq!(d["suppressed"], json!([{"reason": "acknowledged", "count": 1}, {"reason": "cooldown", "count": 1}]));
    let kinds: Vec<&str> = d["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["fired", "repeated", "repeated", "acknowledged", "repeated", "resolved"]);
    // The list filters.
    let list = app.get("/api/v1/alerts?status=firing&severity=critical").await.body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["title"], "C");
    let page = app.get("/api/v1/alerts?limit=2").await.body;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let rest = app.get(&format!("/api/v1/alerts?limit=500&cursor={}", page["next_cursor"].as_str().unwrap())).await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 3, "{}", rest.body);
}

async fn sources_raise_and_resolve_alerts(backend: Backend) {
    let env = [
        ("HYPERFLEET__HEALTH__KVM_DEVICE", "/nonexistent/kvm"),
        ("HYPERFLEET__ALERTS__MONITOR_INTERVAL_S", "1"),
        ("HYPERFLEET__RETRY__MAX_ATTEMPTS", "2"),
    ];
    let r = HttpReceiver::start(&[], 200).await;
    let mut app = spawn(backend, &hook(&r), &env).await;
    let find = |items: &Value, source: &str| -> Vec<Value> {
        items["items"].as_array().unwrap().iter().filter(|a| a["source"] == source).cloned().collect()
    };

    // An operation that fails for good: a warning, linked to it.
    let op = app.noop(0, 5).await;
    app.wait_status(&op, &["failed"]).await;
    app.wait_for(|| async { !find(&app.get("/api/v1/alerts").await.body, "operation").is_empty() }).await;
    let a = find(&app.get("/api/v1/alerts").await.body, "operation")[0].clone();
    assert_eq!(a["operation_id"], op);
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["title"], "Operation noop failed");
    assert!(a["message"].as_str().unwrap().contains("noop_failure"), "{a:#}");

    // A backup verification schedule checks its parameters when asked.
    let body = json!({"name": "verify", "cron": "0 0 1 1 *", "kind": "backup.verify", "params": {"level": "deep"}});
    let s = app.post("/api/v1/schedules", body).await;
    assert_eq!((s.status, s.body["code"].as_str()), (422, Some("invalid_parameters")), "{}", s.body);

    // A failing health check (no /dev/kvm here): critical; each run is an occurrence.
    for _ in 0..2 {
        let run = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
        app.wait_status(run.body["items"][0]["id"].as_str().unwrap(), &["succeeded"]).await;
    }
    let health = find(&app.get("/api/v1/alerts?source=health").await.body, "health");
    let kvm = health.iter().find(|a| a["labels"]["check"] == "kvm").unwrap();
    assert_eq!(kvm["severity"], "critical");
    assert_eq!(kvm["host"], "hv1");
    assert_eq!(kvm["dedup_key"], "health:hv1:kvm");
    assert_eq!(kvm["occurrences"], 2);
    // ... and a check back to ok resolves its alert.
    let store = hyperfleet_core::store::Store::connect(&app.database_url, hyperfleet_core::store::PoolConfig::new(2))
        .await
        .unwrap();
    let ok =
        hyperfleet_core::health::Measurement::plain("kvm", hyperfleet_core::health::Status::Ok, "/dev/kvm is back");
    let now = hyperfleet_core::Timestamp::now();
    let app_layer = hyperfleet_core::app::App::new(store);
    app_layer.record_health_run(hyperfleet_core::OperationId::new(), "hv1", now, &[ok]).await.unwrap();
    let kvm = app.get(&format!("/api/v1/alerts/{}", kvm["id"].as_str().unwrap())).await.body;
    assert_eq!(kvm["alert"]["status"], "resolved");
    assert_eq!(kvm["events"].as_array().unwrap().last().unwrap()["message"], "/dev/kvm is back");

    // A worker that stops beating: critical; back: resolved.
    let opts = Options { host: "hv2".into(), ..app.options.clone() };
    let pid = app.spawn_worker_process_with(&opts);
    app.wait_for(|| async { app.get("/api/v1/hosts/hv2").await.body["online"] == true }).await;
    app.kill_worker(pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let offline = loop {
        let fleet = find(&app.get("/api/v1/alerts?source=fleet&status=firing").await.body, "fleet");
        if let Some(a) = fleet.iter().find(|a| a["host"] == "hv2") {
            break a.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no offline alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(offline["severity"], "critical");
    assert_eq!(offline["title"], "Worker offline on hv2");
    app.wait_for(|| async { r.on("/hook").iter().any(|x| x.json["alert"]["title"] == "Worker offline on hv2") }).await;
    app.spawn_worker_process_with(&opts);
    let id = offline["id"].as_str().unwrap().to_owned();
    wait_detail(&app, &id, |d| d["alert"]["status"] == "resolved").await;
    app.wait_for(|| async {
        r.on("/hook")
            .iter()
            .any(|x| x.json["event"] == "resolved" && x.json["alert"]["title"] == "Worker offline on hv2")
    })
    .await;
}

async fn a_backlog_raises_a_warning_until_it_clears(backend: Backend) {
    let env = [("HYPERFLEET__ALERTS__MONITOR_INTERVAL_S", "1"), ("HYPERFLEET__ALERTS__BACKLOG_THRESHOLD_S", "1")];
    let options = Options {
        worker: false,
        scheduler: true,
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let op = app.noop(0, 0).await; // no worker: it waits
    let backlog = || async {
        app.get("/api/v1/alerts?source=fleet").await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["dedup_key"] == "fleet:backlog:hyperfleet.shared")
            .cloned()
    };
    app.wait_for(|| async { backlog().await.is_some() }).await;
    let a = backlog().await.unwrap();
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["status"], "firing");
    let r = app.post(&format!("/api/v1/operations/{op}/cancel"), json!({})).await;
    assert!(r.status < 300, "{}", r.body);
    app.wait_for(|| async { backlog().await.is_some_and(|a| a["status"] == "resolved") }).await;
}

async fn bad_alert_input_is_a_clear_4xx_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { scheduler: true, ..Options::default() }).await;
    // 400: the body breaks the schema; 422: it fits, but breaks a rule the schema cannot say.
    let cases = [
        (json!({"severity": "fatal", "title": "t", "message": "m"}), 400, "invalid_body"),
        (json!({"severity": "info", "title": "  ", "message": "m"}), 422, "invalid_title"),
        (json!({"severity": "info", "title": "x".repeat(513), "message": "m"}), 400, "invalid_body"),
        (json!({"severity": "info", "title": "t", "message": "m", "labels": {"bad name": "v"}}), 422, "invalid_labels"),
        (json!({"severity": "info", "title": "t", "message": "m", "labels": {"host": "v"}}), 422, "invalid_labels"),
        (json!({"severity": "info", "title": "t", "message": "m", "host": "no spaces"}), 400, "invalid_body"),
        (json!({"severity": "info", "title": "t", "message": "m", "dedup_key": "a\u{1}b"}), 400, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let r = app.post("/api/v1/alerts", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.body["code"], code, "{body}");
    }
    let r = app.request("POST", "/api/v1/alerts", Some(r#"{"severity": "info"}"#), &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let silences = [
        (json!({"matchers": [], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"}), 400, "invalid_body"),
        (
            json!({"matchers": [{"name": "host", "op": "~", "value": "x"}], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"}),
            400,
            "invalid_body",
        ),
        (
            json!({"matchers": [{"name": "host", "op": "=~", "value": "("}], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"}),
            422,
            "invalid_matcher",
        ),
        (
            json!({"matchers": [{"name": "host", "value": "x"}], "ends_at": "2001-01-01T00:00:00Z", "comment": "c"}),
            422,
            "invalid_time_window",
        ),
        (
            json!({"matchers": [{"name": "host", "value": "x"}], "ends_at": "tomorrow", "comment": "c"}),
            400,
            "invalid_body",
        ),
        (
            json!({"matchers": [{"name": "host", "value": "x"}], "ends_at": "2099-01-01T00:00:00Z", "comment": " "}),
            422,
            "invalid_comment",
        ),
    ];
    for (body, status, code) in silences {
        let r = app.post("/api/v1/silences", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.body["code"], code, "{body}");
    }
    let unknown = "01a21516-6597-7218-9588-f61f19efa58a";
    for (method, path, status, code) in [
        ("GET", format!("/api/v1/alerts/{unknown}"), 404, "alert_not_found"),
        ("POST", format!("/api/v1/alerts/{unknown}/ack"), 404, "alert_not_found"),
        ("GET", "/api/v1/alerts/nope".to_owned(), 400, "invalid_parameter"),
        ("GET", "/api/v1/alerts?severity=loud".to_owned(), 400, "invalid_parameter"),
        ("GET", "/api/v1/alerts?since=yesterday".to_owned(), 400, "invalid_parameter"),
        ("DELETE", format!("/api/v1/silences/{unknown}"), 404, "silence_not_found"),
    ] {
        let r = app.request(method, &path, None, &[]).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        assert_eq!(r.body["code"], code, "{method} {path}");
    }
    let r = app.post("/api/v1/alerts/test", json!({})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("no_channels")), "{}", r.body);
    let r = app.post("/api/v1/alerts/test", json!({"channel": "nope"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("channel_not_found")), "{}", r.body);
    // Nothing was recorded.
    assert_eq!(app.get("/api/v1/alerts").await.body["items"], json!([]));
    assert_eq!(app.get("/api/v1/silences?expired=true").await.body["items"], json!([]));
    assert_eq!(app.get("/api/v1/channels").await.body["items"], json!([]));
}

/// `hyperfleet alert <severity> <title> <message>`: the seed's call shape.
async fn the_cli_posts_manual_alerts(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { scheduler: true, ..Options::default() }).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hyperfleet"))
            .arg("alert")
            .args(args)
            .env("HYPERFLEET_URL", &app.address)
            .env("HYPERFLEET_TOKEN", &app.token)
            .env_remove("HYPERFLEET_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&["critical", "Backup failed", "vm01: \"disk\" <full>", "--dedup-key", "backup-vm01"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("raised alert "));
    let out = run(&["critical", "Backup failed", "again", "--dedup-key", "backup-vm01", "--label", "vm=vm01"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("updated alert "), "{out:?}");
    let list = app.get("/api/v1/alerts").await.body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let a = &list["items"][0];
    assert_eq!((a["severity"].as_str(), a["occurrences"].as_i64()), (Some("critical"), Some(2)));
    assert_eq!(a["labels"]["vm"], "vm01");
    assert_eq!(a["source"], "manual");
    let out = run(&["loud", "t", "m"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_severity"), "{out:?}");
}

crate::on_both_backends!(
    the_policy_decides_what_is_sent,
    sources_raise_and_resolve_alerts,
    a_backlog_raises_a_warning_until_it_clears,
    bad_alert_input_is_a_clear_4xx_and_changes_nothing,
    the_cli_posts_manual_alerts,
);
