//! Retention: finished operations, their attempts, health runs and resolved alerts past their
//! keep time are pruned by the `ledger.prune` operation; recent work, recent
//! failures and anything a kept retry points to stay.

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, Options, TestApp};

async fn age(app: &TestApp, backend: Backend, sql: &str, id: &str) {
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            let days_ago = hyperfleet_core::Timestamp::now().minus(std::time::Duration::from_secs(86_400 * 100));
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(days_ago.to_string())
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            let days_ago = chrono::Utc::now() - chrono::Duration::days(100);
            let id = uuid::Uuid::parse_str(id).unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).bind(days_ago).bind(id).execute(&mut c).await.unwrap();
        }
    }
}

async fn prune_keeps_what_it_should(backend: Backend) {
    let env = vec![("HYPERFLEET__RETENTION__ALERTS_DAYS".to_owned(), "90".to_owned())];
    let app = TestApp::spawn_with(backend, Options { env, ..Options::default() }).await;
    // Fired by a schedule: once pruned, the schedule still lists (without its last outcome).
    let r = app.post("/api/v1/schedules", json!({"name": "nightly", "cron": "0 0 1 1 *", "kind": "noop"})).await;
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", r.body["id"].as_str().unwrap()), json!({})).await;
    let old_ok = r.body["id"].as_str().unwrap().to_owned();
    let recent_ok = app.noop(0, 0).await;
    let r = app.post("/api/v1/vms/test/resume", json!({})).await; // fails: it is running
    let old_failed = r.body["id"].as_str().unwrap().to_owned();
    for id in [&old_ok, &recent_ok, &old_failed] {
        app.wait_status(id, &["succeeded", "failed"]).await;
    }
    let r = app.post(&format!("/api/v1/operations/{old_failed}/retry"), json!({})).await;
    let retry = r.body["id"].as_str().unwrap().to_owned();
    app.wait_status(&retry, &["succeeded", "failed"]).await;
    let r = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
    let health = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    app.wait_status(&health, &["succeeded"]).await;

    let set_old = "UPDATE operations SET finished_at = $1 WHERE id = $2";
    for id in [&old_ok, &old_failed] {
        age(&app, backend, set_old, id).await;
    }
    age(&app, backend, "UPDATE health_runs SET finished_at = $1 WHERE id = $2", &health).await;
    let mut alerts = Vec::new();
    for title in ["old, resolved", "recent, resolved", "old, firing"] {
        let r = app.post("/api/v1/alerts", json!({"severity": "info", "title": title, "message": "m"})).await;
        let id = r.body["id"].as_str().unwrap().to_owned();
        if title.ends_with("resolved") {
            app.post(&format!("/api/v1/alerts/{id}/resolve"), json!({})).await;
        }
        alerts.push(id);
    }
    age(&app, backend, "UPDATE alerts SET resolved_at = $1 WHERE id = $2", &alerts[0]).await;
    age(&app, backend, "UPDATE alerts SET first_seen = $1 WHERE id = $2", &alerts[2]).await;

    let r = app.post("/api/v1/schedules", json!({"name": "prune", "cron": "0 0 1 1 *", "kind": "ledger.prune"})).await;
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", r.body["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["result"]["operations"], 1, "only the old success: {op:#}");
    assert_eq!(op["result"]["attempts"], 1);
    assert_eq!(op["result"]["health_runs"], 1);
    assert_eq!(op["result"]["alerts"], 1, "only the old resolved alert");
    assert!(op["result"]["duration_ms"].is_u64());

    assert_eq!(app.get(&format!("/api/v1/operations/{old_ok}")).await.status, 404);
    assert_eq!(app.get(&format!("/api/v1/operations/{recent_ok}")).await.status, 200, "recent work stays");
    assert_eq!(app.get(&format!("/api/v1/operations/{old_failed}")).await.status, 200, "a kept retry points to it");
    assert_eq!(app.get(&format!("/api/v1/health/runs/{health}")).await.status, 404);
    let mut kept = Vec::new();
    for id in &alerts {
        kept.push(app.get(&format!("/api/v1/alerts/{id}")).await.status);
    }
    assert_eq!(kept, [404, 200, 200], "firing alerts are kept however old");
    let r = app.get("/api/v1/schedules").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let nightly = r.body["items"].as_array().unwrap().iter().find(|s| s["name"] == "nightly").unwrap().clone();
    assert_eq!((nightly["last_operation_id"].as_str(), nightly.get("last_outcome")), (Some(old_ok.as_str()), None));
    app.stop().await;
}

crate::on_both_backends!(prune_keeps_what_it_should);
