//! Durable retries: transient failures back off, permanent ones stop at once.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

fn millis_between(a: &str, b: &str) -> i64 {
    let a = chrono::DateTime::parse_from_rfc3339(a).unwrap();
    let b = chrono::DateTime::parse_from_rfc3339(b).unwrap();
    (b - a).num_milliseconds()
}

async fn transient_failures_retry_with_growing_delays(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { backoff_base_ms: 200, ..Options::default() }).await;
    let id = app.noop(0, 3).await;
    let op = app.wait_status(&id, &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["attempt_count"], 4);
    let attempts = op["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    for a in &attempts[..3] {
        assert_eq!(a["outcome"], "failed");
        assert_eq!(a["error_class"], "transient");
        assert_eq!(a["error_code"], "noop_failure");
        assert!(a["message"].as_str().unwrap().contains("fails on purpose"));
    }
    assert_eq!(attempts[3]["outcome"], "succeeded");
    // Backoff base·2^(n-1), jittered into [½·d, d]: 100-200, 200-400, 400-800 ms.
    let gaps: Vec<i64> = attempts
        .windows(2)
        .map(|w| millis_between(w[0]["finished_at"].as_str().unwrap(), w[1]["started_at"].as_str().unwrap()))
        .collect();
    for (i, gap) in gaps.iter().enumerate() {
        let floor = 100 << i;
        assert!(*gap >= floor, "gap {i} is {gap} ms, below the backoff floor {floor} ms: {gaps:?}");
    }
    assert!(gaps[2] > gaps[0], "delays grow: {gaps:?}");
    app.stop().await;
}

async fn transient_failures_stop_at_max_attempts(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, Options { backoff_base_ms: 50, max_attempts: 3, ..Options::default() }).await;
    let id = app.noop(0, 10).await;
    let op = app.wait_status(&id, &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "failed", "{op:#}");
    assert_eq!(op["attempt_count"], 3);
    assert_eq!(op["error_class"], "transient");
    assert_eq!(op["error_code"], "noop_failure");
    assert_eq!(op["attempts"].as_array().unwrap().len(), 3);
    app.stop().await;
}

async fn permanent_failure_fails_after_one_attempt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.post("/api/v1/vms/test/start", json!({})).await; // already running
    assert_eq!(r.status, 202, "{}", r.body);
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "failed", "{op:#}");
    assert_eq!(op["attempt_count"], 1);
    assert_eq!(op["error_class"], "permanent");
    assert_eq!(op["error_code"], "invalid_vm_state", "{op:#}");
    let attempt = &op["attempts"][0];
    assert_eq!(attempt["outcome"], "failed");
    assert_eq!(attempt["error_class"], "permanent");
    assert!(attempt["message"].as_str().unwrap().contains("it is running"), "the reason is kept: {attempt:#}");
    app.stop().await;
}

crate::on_both_backends!(
    transient_failures_retry_with_growing_delays,
    transient_failures_stop_at_max_attempts,
    permanent_failure_fails_after_one_attempt,
);
