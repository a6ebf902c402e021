//! `/metrics`: exact counters after a known workload, on both backends, read
//! back through Prometheus's own text parser.

use std::io::Write;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp};

/// The page parsed by the official Python client's parser: (name, labels, value).
fn parse(text: &str) -> Vec<(String, Value, f64)> {
    let python = std::env::var("HYPERFLEET_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/parse_metrics.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the page: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(String, Value, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    rows
}

fn value(samples: &[(String, Value, f64)], name: &str, labels: Value) -> Option<f64> {
    let wanted = labels.as_object().unwrap();
    samples.iter().find(|(n, l, _)| n == name && wanted.iter().all(|(k, v)| l.get(k) == Some(v))).map(|(_, _, v)| *v)
}

async fn counters_are_exact_after_a_known_workload(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = vec![app.noop(0, 0).await, app.noop(0, 0).await, app.noop(0, 1).await];
    let r = app.post("/api/v1/vms/test/resume", json!({})).await; // fails for good: it is running
    ids.push(r.body["id"].as_str().unwrap().to_owned());
    for id in &ids {
        app.wait_status(id, &["succeeded", "failed"]).await;
    }
    let r = app.request("GET", "/metrics", None, &[]).await;
    assert_eq!(r.status, 200);
    let text = match &r.body {
        Value::String(s) => s.clone(),
        other => panic!("not text: {other}"),
    };
    let s = parse(&text);
    let finished = "hyperfleet_operations_finished_total";
    assert_eq!(value(&s, finished, json!({"kind": "noop", "status": "succeeded"})), Some(3.0), "{text}");
    assert_eq!(value(&s, finished, json!({"kind": "vm.resume", "status": "failed"})), Some(1.0));
    let attempts = "hyperfleet_attempts_total";
    assert_eq!(value(&s, attempts, json!({"kind": "noop", "outcome": "succeeded"})), Some(3.0));
    assert_eq!(value(&s, attempts, json!({"kind": "noop", "outcome": "failed"})), Some(1.0), "the retried attempt");
    let count = "hyperfleet_attempt_duration_seconds_count";
    assert_eq!(value(&s, count, json!({"kind": "noop"})), Some(4.0));
    let inf = value(&s, "hyperfleet_attempt_duration_seconds_bucket", json!({"kind": "noop", "le": "+Inf"}));
    assert_eq!(inf, Some(4.0));
    // Every attempt that ended with an outcome waited in its queue once: from
    // its creation (first attempts) or from its retry falling due (the second).
    let waits = "hyperfleet_queue_wait_seconds_count";
    assert_eq!(value(&s, waits, json!({"kind": "noop"})), Some(4.0), "{text}");
    assert_eq!(value(&s, waits, json!({"kind": "vm.resume"})), Some(1.0));
    let wait_inf = value(&s, "hyperfleet_queue_wait_seconds_bucket", json!({"kind": "noop", "le": "+Inf"}));
    assert_eq!(wait_inf, Some(4.0));
    assert!(value(&s, "hyperfleet_queue_wait_seconds_sum", json!({"kind": "noop"})).is_some_and(|v| v >= 0.0));
    assert_eq!(value(&s, "hyperfleet_worker_up", json!({"host": "hv1"})), Some(1.0));
    assert!(value(&s, "hyperfleet_vms", json!({"host": "hv1", "state": "running"})).is_some_and(|n| n >= 1.0));
    assert_eq!(value(&s, "hyperfleet_alerts_firing", json!({"severity": "warning"})), Some(1.0), "{text}");
    assert!(!text.contains(&ids[0]), "no operation ids in labels");
    assert_eq!(app.request_as(None, "GET", "/metrics", None, &[]).await.status, 401);
    // The figures are the folded counters plus the increments appended
    // since: folds (two at once here, beside the worker's own) move the
    // increments without counting any twice or losing one.
    let core = app.core().await;
    let before = core.store().metric_counters().await.unwrap();
    let (a, b) = tokio::join!(core.store().fold_counters(), core.store().fold_counters());
    a.unwrap();
    b.unwrap();
    let after = core.store().metric_counters().await.unwrap();
    // Sums of durations may differ in their last bits: added in another order.
    let same = |(n, l, v): &(String, String, f64), (m, k, w): &(String, String, f64)| {
        n == m && l == k && (v - w).abs() <= 1e-9 * v.abs().max(1.0)
    };
    assert!(before.len() == after.len() && before.iter().zip(&after).all(|(b, a)| same(b, a)), "{before:?} {after:?}");
    assert_eq!(core.store().fold_counters().await.unwrap(), 0, "nothing left to fold");

    // The worker folds on its own: one more attempt's increments leave the
    // table without anyone asking, and are counted.
    let one_more = app.noop(0, 0).await;
    app.wait_status(&one_more, &["succeeded"]).await;
    app.wait_for(|| async { pending_increments(&app, backend).await == 0 }).await;
    let counters = core.store().metric_counters().await.unwrap();
    let succeeded = counters
        .iter()
        .find(|(n, l, _)| n == attempts && l == r#"kind="noop",outcome="succeeded""#)
        .map(|(_, _, v)| *v);
    assert_eq!(succeeded, Some(4.0), "{counters:?}");
    app.stop().await;
}

/// How many counter increments wait for a fold, read behind the app's back.
async fn pending_increments(app: &TestApp, backend: Backend) -> i64 {
    use sqlx::Connection;
    let sql = "SELECT COUNT(*) FROM metric_counter_increments";
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

/// The separate listener (`metrics.listen`) serves the same page without a
/// token, and nothing else; backups show by host, state, verification and
/// freshness, with no VM names in the labels.
async fn the_metrics_listener_needs_no_token_and_backups_are_counted(backend: Backend) {
    let clock = hyperfleet_core::time::Clock::adjustable();
    let env = vec![("HYPERFLEET__METRICS__LISTEN".to_owned(), "127.0.0.1:0".to_owned())];
    let app = TestApp::spawn_with(backend, Options { env, clock: Some(clock.clone()), ..Default::default() }).await;
    let listener = app.metrics_address.clone().expect("metrics.listen is set, so the listener runs");
    assert_ne!(listener, app.address, "a listener of its own");

    let old = crate::backups::recorded_backup(&app, "hv1", "web").await;
    crate::backups::recorded_backup(&app, "hv1", "test").await;
    let newest = crate::backups::recorded_backup(&app, "hv1", "test").await;
    let core = app.core().await;
    let record = core.store().backup(hyperfleet_core::BackupId::parse(&old).unwrap()).await.unwrap();
    crate::backups::record_ok_verification(&core, &record).await;
    let id = app.noop(0, 0).await;
    app.wait_status(&id, &["succeeded"]).await;

    let scrape = || async {
        let r = reqwest::get(format!("{listener}/metrics")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        r.text().await.unwrap()
    };
    let text = scrape().await;
    let s = parse(&text);
    let finished = json!({"kind": "noop", "status": "succeeded"});
    assert_eq!(value(&s, "hyperfleet_operations_finished_total", finished), Some(1.0), "{text}");
    assert_eq!(value(&s, "hyperfleet_backups", json!({"host": "hv1", "state": "complete"})), Some(3.0), "{text}");
    let verification = |state: &str| json!({"host": "hv1", "verification": state});
    assert_eq!(value(&s, "hyperfleet_backups_verification", verification("ok")), Some(1.0));
    assert_eq!(value(&s, "hyperfleet_backups_verification", verification("none")), Some(2.0));
    let shown = app.get(&format!("/api/v1/backups/{newest}")).await.body;
    let finished_at = chrono::DateTime::parse_from_rfc3339(shown["finished_at"].as_str().unwrap()).unwrap();
    let newest_at = value(&s, "hyperfleet_backup_newest_timestamp_seconds", json!({"host": "hv1"}));
    assert_eq!(newest_at, Some(finished_at.timestamp_millis() as f64 / 1000.0));
    for vm in ["web", "test"] {
        assert!(!text.contains(&format!("\"{vm}\"")), "no VM names in labels: {text}");
    }
    // The bearer page says the same (its gauges read the same ledger).
    let bearer = app.request("GET", "/metrics", None, &[]).await;
    let bearer = parse(bearer.body.as_str().unwrap());
    assert_eq!(value(&bearer, "hyperfleet_backups", json!({"host": "hv1", "state": "complete"})), Some(3.0));

    // Ten days on, the verification is outdated and the stalest VM's newest
    // backup (web's only one) is at least ten days old.
    clock.advance(std::time::Duration::from_secs(10 * 86_400));
    let s = parse(&scrape().await);
    assert_eq!(value(&s, "hyperfleet_backups_verification", verification("outdated")), Some(1.0));
    assert_eq!(value(&s, "hyperfleet_backups_verification", verification("ok")), None);
    let stalest = value(&s, "hyperfleet_backup_stalest_age_seconds", json!({"host": "hv1"})).unwrap();
    assert!(stalest >= 10.0 * 86_400.0, "{stalest}");

    let other = reqwest::get(format!("{listener}/api/v1/vms")).await.unwrap();
    assert_eq!(other.status(), 404, "the listener serves /metrics only");
    app.stop().await;
}

crate::on_both_backends!(
    counters_are_exact_after_a_known_workload,
    the_metrics_listener_needs_no_token_and_backups_are_counted
);
