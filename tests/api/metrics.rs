//! `/metrics`: exact counters after a known workload, on both backends, read
//! back through Prometheus's own text parser.

use std::io::Write;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

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
    assert_eq!(value(&s, "hyperfleet_worker_up", json!({"host": "hv1"})), Some(1.0));
    assert!(value(&s, "hyperfleet_vms", json!({"host": "hv1", "state": "running"})).is_some_and(|n| n >= 1.0));
    assert_eq!(value(&s, "hyperfleet_alerts_firing", json!({"severity": "warning"})), Some(1.0), "{text}");
    assert!(!text.contains(&ids[0]), "no operation ids in labels");
    assert_eq!(app.request_as(None, "GET", "/metrics", None, &[]).await.status, 401);
    app.stop().await;
}

crate::on_both_backends!(counters_are_exact_after_a_known_workload);
