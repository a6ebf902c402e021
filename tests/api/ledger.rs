//! Submit, idempotency, cancel and retry links.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

async fn submit_runs_and_records_its_attempt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.post("/api/v1/diagnostics/noop", json!({"sleep_ms": 10})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], format!("/api/v1/operations/{id}").as_str());
    assert!(["queued", "running"].contains(&r.body["status"].as_str().unwrap()), "{}", r.body);
    assert_eq!(r.body["requested_by"], "admin", "attributed to the token's name");
    assert_eq!(r.body["request_id"], r.headers["x-request-id"].to_str().unwrap());

    let op = app.wait_status(id, &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["attempt_count"], 1);
    assert_eq!(op["result"]["slept_ms"], 10);
    let attempts = op["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "succeeded");
    assert_eq!(attempts[0]["host"], "hv1");
    assert!(attempts[0]["worker"].as_str().unwrap().starts_with("hv1-"));
    assert!(attempts[0]["finished_at"].is_string());
    assert!(op.get("last_error").is_none(), "absent optional fields are left out: {op:#}");
    app.stop().await;
}

async fn idempotency_key_replays_or_conflicts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = r#"{"sleep_ms": 5}"#;
    let key = [("Idempotency-Key", "abc-123")];
    let first = app.request("POST", "/api/v1/diagnostics/noop", Some(body), &key).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = app.request("POST", "/api/v1/diagnostics/noop", Some(body), &key).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["location"], first.headers["location"]);

    let other = app.request("POST", "/api/v1/diagnostics/noop", Some(r#"{"sleep_ms": 6}"#), &key).await;
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.body["code"], "idempotency_conflict");
    assert!(other.body["request_id"].is_string());
    assert_eq!(app.all_operations().await.len(), 1, "a conflicting request writes nothing");
    assert_eq!(first.body["idempotency_key"], "abc-123", "shown as sent");

    // Keys are scoped to the token: another token's same key is another request,
    // recorded as its own, and never answers with (or names) the first one's operation.
    let r = app.post("/api/v1/tokens", json!({"name": "other", "role": "operator"})).await;
    let other_token = r.body["secret"].as_str().unwrap().to_owned();
    let send = |body: &'static str| {
        let (app, token) = (&app, other_token.clone());
        async move { app.request_as(Some(&token), "POST", "/api/v1/diagnostics/noop", Some(body), &key).await }
    };
    let theirs = send(r#"{"sleep_ms": 6}"#).await;
    assert_eq!(theirs.status, 202, "{}", theirs.body);
    assert_ne!(theirs.body["id"], first.body["id"]);
    assert_eq!(theirs.body["requested_by"], "other");
    assert_eq!(send(r#"{"sleep_ms": 6}"#).await.body["id"], theirs.body["id"], "their own replay");
    let clash = send(r#"{"sleep_ms": 7}"#).await;
    assert_eq!(clash.status, 409);
    let first_id = first.body["id"].as_str().unwrap();
    assert!(!clash.body.to_string().contains(first_id), "never names another token's operation: {}", clash.body);
    app.stop().await;
}

/// Concurrent submits share commits (group commit). Requests racing with the
/// same Idempotency-Key end as one operation and its replay, and the other
/// submits of their group neither fail nor vanish with them.
async fn concurrent_submits_with_shared_keys_each_get_their_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys: Vec<String> = (0..6).map(|i| format!("race-{i}")).collect();
    // Each key twice, and as many submits without a key, all at once.
    let sends = keys.iter().chain(&keys).map(Some).chain(std::iter::repeat_n(None, keys.len())).map(|key| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k.as_str())).into_iter().collect();
            (key, app.request("POST", "/api/v1/diagnostics/noop", Some(r#"{"sleep_ms": 0}"#), &headers).await)
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    for key in &keys {
        let mine: Vec<_> = answers.iter().filter(|(k, _)| *k == Some(key)).map(|(_, r)| r).collect();
        let mut statuses: Vec<u16> = mine.iter().map(|r| r.status).collect();
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 202],
            "one stored, one replayed: {:?}",
            mine.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        assert_eq!(mine[0].body["id"], mine[1].body["id"], "the replay names the stored operation");
    }
    let keyless: Vec<_> = answers.iter().filter(|(k, _)| k.is_none()).map(|(_, r)| r).collect();
    assert!(keyless.iter().all(|r| r.status == 202), "{:?}", keyless.iter().map(|r| &r.body).collect::<Vec<_>>());
    let mut ids: Vec<&str> = keyless.iter().map(|r| r.body["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), keys.len(), "each keyless submit is its own operation");
    assert_eq!(app.all_operations().await.len(), 2 * keys.len(), "one per key and one per keyless submit");
    app.stop().await;
}

async fn cancel_queued_operation(backend: Backend) {
    // No worker: the operation stays queued.
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let id = app.noop(0, 0).await;
    let r = app.post(&format!("/api/v1/operations/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    let op = app.operation(&id).await;
    assert_eq!(op["attempts"].as_array().unwrap().len(), 0);
    assert!(op["finished_at"].is_string());
    assert_eq!(op["cancelled_by"], "admin", "who cancelled is recorded: {op:#}");

    let again = app.post(&format!("/api/v1/operations/{id}/cancel"), json!({})).await;
    assert_eq!(again.status, 200, "cancelling a cancelled operation is a no-op: {}", again.body);
    app.stop().await;
}

async fn cancel_operation_waiting_to_retry(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { backoff_base_ms: 20_000, ..Options::default() }).await;
    let id = app.noop(0, 5).await;
    let op = app.wait_status(&id, &["retrying"]).await;
    assert_eq!(op["attempt_count"], 1);
    assert!(op["next_attempt_at"].is_string());
    let r = app.post(&format!("/api/v1/operations/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    let op = app.operation(&id).await;
    assert_eq!(op["attempts"].as_array().unwrap().len(), 1, "no attempt after the cancel: {op:#}");
    assert!(op.get("next_attempt_at").is_none());
    app.stop().await;
}

async fn cancel_running_operation_at_a_safe_point(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.noop(30_000, 0).await;
    app.wait_status(&id, &["running"]).await;
    let r = app.post(&format!("/api/v1/operations/{id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["cancel_requested"], true);
    let op = app.wait_status(&id, &["cancelled", "succeeded", "failed"]).await;
    assert_eq!(op["status"], "cancelled", "{op:#}");
    assert_eq!(op["attempts"][0]["outcome"], "cancelled");
    assert_eq!(op["cancelled_by"], "admin", "{op:#}");
    app.stop().await;
}

async fn retry_creates_a_linked_operation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Resuming a running VM is an invalid state: a permanent failure.
    let r = app.post("/api/v1/vms/test/resume", json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let failed = r.body["id"].as_str().unwrap().to_owned();
    app.wait_status(&failed, &["failed"]).await;

    let r = app.post(&format!("/api/v1/operations/{failed}/retry"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["retry_of"], failed.as_str());
    assert_eq!(r.body["kind"], "vm.resume");
    assert_ne!(r.body["id"], failed.as_str());

    let running = app.noop(5_000, 0).await;
    let r = app.post(&format!("/api/v1/operations/{running}/retry"), json!({})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "operation_not_retryable");
    app.stop().await;
}

async fn operations_on_one_vm_never_overlap(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Alternating suspend/resume only all succeed if they run one at a time, in order.
    let mut ids = Vec::new();
    for i in 0..8 {
        let action = if i % 2 == 0 { "suspend" } else { "resume" };
        let r = app.post(&format!("/api/v1/vms/test/{action}"), json!({})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let mut intervals = Vec::new();
    for id in &ids {
        let op = app.wait_status(id, &["succeeded", "failed"]).await;
        assert_eq!(op["status"], "succeeded", "{op:#}");
        for a in op["attempts"].as_array().unwrap() {
            let start = a["started_at"].as_str().unwrap().to_owned();
            let end = a["finished_at"].as_str().unwrap().to_owned();
            intervals.push((parse(&start), parse(&end)));
        }
    }
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "attempts overlap: {pair:?}");
    }
    assert_eq!(app.vm_state("test").await, "running");
    app.stop().await;
}

async fn list_filters_and_paginates(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(app.noop(0, 0).await);
    }
    let seen: Vec<String> = app
        .every_page("/api/v1/operations?kind=noop", 3)
        .await
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every noop exactly once");
    let r = app.get("/api/v1/operations?kind=noop&status=queued&limit=500").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 7);
    let r = app.get("/api/v1/operations?kind=vm.start").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = app.get("/api/v1/operations?status=succeeded").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = app.get("/api/v1/operations?since=2999-01-01T00:00:00Z").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    app.stop().await;
}

fn parse(t: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(t).unwrap()
}

crate::on_both_backends!(
    submit_runs_and_records_its_attempt,
    idempotency_key_replays_or_conflicts,
    concurrent_submits_with_shared_keys_each_get_their_answer,
    cancel_queued_operation,
    cancel_operation_waiting_to_retry,
    cancel_running_operation_at_a_safe_point,
    retry_creates_a_linked_operation,
    operations_on_one_vm_never_overlap,
    list_filters_and_paginates,
);
