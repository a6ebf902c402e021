//! Token lifetimes are bounded (ten years), refused with a code before
//! anything is written, and a token stored with an absurd expiry by an older
//! version still lists.

use serde_json::json;

use crate::{
    helpers::{Backend, Options, TestApp},
    security::cli,
};

async fn audit_len(app: &TestApp) -> usize {
    app.get("/api/v1/audit").await.body["items"].as_array().unwrap().len()
}

async fn lifetimes_beyond_ten_years_are_refused_and_write_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let tokens_before = app.get("/api/v1/tokens").await.body["items"].as_array().unwrap().len();
    let audit_before = audit_len(&app).await;

    // Fits the schema (six digits), breaks the ten-year rule.
    let r = app.post("/api/v1/tokens", json!({"name": "forever", "role": "viewer", "expires_in": "999999d"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (422, Some("invalid_expires_in")), "{}", r.body);
    // Past what the schema allows.
    let r = app.post("/api/v1/tokens", json!({"name": "forever", "role": "viewer", "expires_in": "3000000d"})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    for lifetime in ["100000000d", "3000000d", "3651d"] {
        let out = cli(&app, &["token", "create", "--name", "forever", "--role", "viewer", "--expires-in", lifetime]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("at most 3650d") && !err.contains("panicked"),
            "{lifetime}: {err}"
        );
    }
    let r = app.get("/api/v1/tokens").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), tokens_before, "{}", r.body);
    assert_eq!(audit_len(&app).await, audit_before);

    // Ten years is allowed, and audited.
    let r = app.post("/api/v1/tokens", json!({"name": "decade", "role": "viewer", "expires_in": "3650d"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(audit_len(&app).await, audit_before + 1);
    app.stop().await;
}

crate::on_both_backends!(lifetimes_beyond_ten_years_are_refused_and_write_nothing);

/// What an older version wrote for `expires_in: "3000000d"` on SQLite: a year
/// past 9999, which broke every later listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_far_future_expiry_still_lists() {
    use sqlx::Connection;
    let app = TestApp::spawn_with(Backend::Sqlite, Options { worker: false, ..Options::default() }).await;
    let r = app.post("/api/v1/tokens", json!({"name": "old", "role": "viewer"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut db = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = '+10240-08-20T08:45:02.619394Z' WHERE name = 'old'")
        .execute(&mut db)
        .await
        .unwrap();
    let r = app.get("/api/v1/tokens").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let old = r.body["items"].as_array().unwrap().iter().find(|t| t["name"] == "old").cloned().unwrap();
    assert!(old["expires_at"].as_str().unwrap().contains("10240"), "{old}");
    let out = cli(&app, &["token", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&app, &["token", "revoke", "old"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.stop().await;
}
