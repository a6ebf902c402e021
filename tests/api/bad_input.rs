//! Bad input gets a 4xx with a stable code and the one error body, and
//! writes nothing.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

async fn bad_requests_answer_a_code_and_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        ("POST", "/api/v1/vms/bad%3Bname/start", None, 400, "invalid_parameter"),
        ("POST", "/api/v1/vms/-leading-dash/start", None, 400, "invalid_parameter"),
        ("POST", "/api/v1/vms/a%20b/shutdown", None, 400, "invalid_parameter"),
        (
            "POST",
            &*Box::leak(format!("/api/v1/vms/{}/start", "a".repeat(65)).into_boxed_str()),
            None,
            400,
            "invalid_parameter",
        ),
        ("GET", "/api/v1/vms/%24(reboot)", None, 400, "invalid_parameter"),
        ("POST", "/api/v1/vms/nosuchvm/start", None, 404, "vm_not_found"),
        ("GET", "/api/v1/vms/nosuchvm", None, 404, "vm_not_found"),
        ("POST", "/api/v1/vms/test/shutdown", Some("{not json"), 400, "invalid_body"),
        ("POST", "/api/v1/vms/test/shutdown", Some(r#"{"timeout_s": "soon"}"#), 400, "invalid_body"),
        ("POST", "/api/v1/vms/test/shutdown", Some(r#"{"timeout_s": 0}"#), 400, "invalid_body"),
        ("POST", "/api/v1/vms/test/shutdown", Some(r#"{"forse": true}"#), 400, "invalid_body"),
        ("POST", "/api/v1/vms/test/start", Some(r#"{"force": true}"#), 400, "invalid_body"),
        ("POST", "/api/v1/diagnostics/noop", Some(r#"{"sleep_ms": -1}"#), 400, "invalid_body"),
        ("GET", "/api/v1/operations?cursor=not-a-cursor", None, 400, "invalid_parameter"),
        ("GET", "/api/v1/operations?limit=501", None, 400, "invalid_parameter"),
        ("GET", "/api/v1/operations?limit=many", None, 400, "invalid_parameter"),
        // Outside the spec's enums, patterns, ranges and formats: 400 before any handler runs.
        ("GET", "/api/v1/operations?status=done", None, 400, "invalid_parameter"),
        ("GET", "/api/v1/operations?kind=vm.explode", None, 400, "invalid_parameter"),
        ("GET", "/api/v1/operations?since=yesterday", None, 400, "invalid_parameter"),
        ("GET", "/api/v1/operations/not-a-uuid", None, 400, "invalid_parameter"),
        ("POST", "/api/v1/operations/not-a-uuid/cancel", None, 400, "invalid_parameter"),
        ("GET", "/api/v1/operations/01a21473-2ed8-711f-b864-66188e1ddf85", None, 404, "operation_not_found"),
        ("POST", "/api/v1/operations/01a21473-2ed8-711f-b864-66188e1ddf85/retry", None, 404, "operation_not_found"),
        ("GET", "/api/v1/nothing-here", None, 404, "not_found"),
        ("PATCH", "/api/v1/schedules/01a21473-2ed8-711f-b864-66188e1ddf85", None, 400, "invalid_body"),
    ];
    for (method, path, body, status, code) in cases {
        let r = app.request(method, path, body, &[]).await;
        assert_eq!(r.status, status, "{method} {path} {body:?}: {}", r.body);
        assert_eq!(r.body["code"], code, "{method} {path} {body:?}: {}", r.body);
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
        assert_eq!(r.body["request_id"], r.headers["x-request-id"].to_str().unwrap(), "{}", r.body);
    }
    let r = app.request("POST", "/api/v1/diagnostics/noop", Some(&"x".repeat(100_000)), &[]).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["code"], "payload_too_large");
    let r = app.request("POST", "/api/v1/diagnostics/noop", None, &[("Idempotency-Key", "")]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "invalid_parameter");
    let r = app.request("POST", "/api/v1/diagnostics/noop", Some("null"), &[]).await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_body")), "{}", r.body);

    assert!(app.all_operations().await.is_empty(), "bad requests wrote operations");
    // And the good request still works afterwards.
    let r = app.post("/api/v1/vms/test/suspend", json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    app.stop().await;
}

async fn probes_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/healthz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert_eq!(r.headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
    assert!(r.headers.get("access-control-allow-origin").is_none(), "no CORS unless configured");
    let r = app.get("/readyz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ready")), "{}", r.body);
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["info"]["title"], "Hyperfleet");
    let r = app.client.get(format!("{}/docs/", app.address)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

crate::on_both_backends!(bad_requests_answer_a_code_and_write_nothing, probes_answer);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_method_is_405_with_allow() {
    let app = TestApp::spawn_with(Backend::Sqlite, Options { worker: false, ..Options::default() }).await;
    for (method, path, allow) in [
        ("DELETE", "/api/v1/vms", "GET, HEAD"),
        ("PUT", "/api/v1/vms/test/start", "POST"),
        ("POST", "/api/v1/schedules/01a21473-2ed8-711f-b864-66188e1ddf85", "DELETE, GET, HEAD, PATCH"),
    ] {
        let r = app.request(method, path, None, &[]).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
        assert_eq!(r.body["code"], "method_not_allowed", "{method} {path}");
    }
}
