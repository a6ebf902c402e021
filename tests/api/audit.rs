//! The audit chain against someone who can write the database but does not
//! hold the key: edits, insertions, deletions, re-chaining and truncation are
//! each caught — truncation by a checkpoint kept outside the database.

use serde_json::json;
use sqlx::Connection;

use crate::{
    helpers::{Backend, Options, TestApp},
    security::cli,
};

/// Runs `sql` on the app's database behind its back.
async fn tamper(app: &TestApp, backend: Backend, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    }
}

fn verify(app: &TestApp, checkpoint: Option<&std::path::Path>) -> (bool, String) {
    let mut args = vec!["audit", "verify"];
    let path;
    if let Some(c) = checkpoint {
        path = c.display().to_string();
        args.extend(["--checkpoint", &path]);
    }
    let out = cli(app, &args);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh app with four audited changes and a checkpoint of them in a file.
async fn audited_app(backend: Backend) -> (TestApp, std::path::PathBuf) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    for name in ["a", "b", "c"] {
        let r = app.post("/api/v1/tokens", json!({"name": name, "role": "viewer"})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let out = cli(&app, &["audit", "checkpoint"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let checkpoint: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checkpoint["sequence"], 4, "the first admin token and three more: {checkpoint}");
    let file = app.dir.path().join("checkpoint.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let (ok, text) = verify(&app, Some(&file));
    assert!(ok && text.contains("intact: 4 events"), "{text}");
    (app, file)
}

async fn each_tampering_is_detected(backend: Backend) {
    let keyed = if backend == Backend::Sqlite { "1" } else { "TRUE" };
    // (what is done behind the application's back, what verify must say)
    let cases: [(&str, String, &str); 5] = [
        ("an edited row", "UPDATE audit_events SET actor = 'mallory' WHERE id = 2".into(), "BROKEN at event 2"),
        (
            "a row re-sealed without the key",
            format!("UPDATE audit_events SET hash = '{}' WHERE id = 3", "ab".repeat(32)),
            "BROKEN at event 3",
        ),
        (
            "an inserted row",
            format!(
                "INSERT INTO audit_events (id, at, actor, action, target, prev_hash, hash, keyed) \
                 SELECT 5, at, 'mallory', 'token.create', 'token/x', hash, hash, {keyed} FROM audit_events WHERE id = 4"
            ),
            "BROKEN at event 5",
        ),
        ("a deleted row", "DELETE FROM audit_events WHERE id = 2".into(), "BROKEN at event 3"),
        (
            "rows rewritten as unkeyed",
            format!("UPDATE audit_events SET keyed = {} WHERE id = 4", if keyed == "1" { "0" } else { "FALSE" }),
            "BROKEN at event 4",
        ),
    ];
    for (what, sql, expected) in cases {
        let (app, _) = audited_app(backend).await;
        tamper(&app, backend, &sql).await;
        let (ok, text) = verify(&app, None);
        assert!(!ok && text.contains(expected), "{what}: {text}");
        app.stop().await;
    }
}

async fn a_checkpoint_catches_truncation_and_refuses_forgery(backend: Backend) {
    let (app, file) = audited_app(backend).await;
    // Cutting the last row off leaves a chain that holds on its own ...
    tamper(&app, backend, "DELETE FROM audit_events WHERE id = 4").await;
    let (ok, text) = verify(&app, None);
    assert!(ok && text.contains("intact: 3 events"), "{text}");
    // ... but not against the checkpoint taken before.
    let (ok, text) = verify(&app, Some(&file));
    assert!(!ok && text.contains("BROKEN at event 4") && text.contains("truncated"), "{text}");

    // A checkpoint edited to match the shortened log is not genuine.
    let mut forged: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    forged["sequence"] = json!(3);
    std::fs::write(&file, forged.to_string()).unwrap();
    let (ok, text) = verify(&app, Some(&file));
    assert!(!ok && text.contains("not sealed with this key"), "{text}");
    app.stop().await;
}

async fn an_admin_change_and_its_audit_entry_commit_together(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    // The audit append fails inside the change's transaction: no token without its entry.
    tamper(&app, backend, "CREATE TABLE audit_events_moved AS SELECT * FROM audit_events").await;
    tamper(&app, backend, "DROP TABLE audit_events").await;
    let r = app.post("/api/v1/tokens", json!({"name": "ghost", "role": "viewer"})).await;
    assert_eq!(r.status, 500, "{}", r.body);
    tamper(&app, backend, "ALTER TABLE audit_events_moved RENAME TO audit_events").await;
    let names: Vec<String> = app.get("/api/v1/tokens").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"ghost".to_owned()), "a change without its audit entry was kept: {names:?}");
    app.stop().await;
}

crate::on_both_backends!(
    each_tampering_is_detected,
    a_checkpoint_catches_truncation_and_refuses_forgery,
    an_admin_change_and_its_audit_entry_commit_together
);
