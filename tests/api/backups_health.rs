//! The backup health checks of each VM with backups, in the host's health
//! runs: `backup_freshness` (age of the newest complete backup against
//! `backups.max_age_h`) and `backup_unverified` (its derived verification).

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    backups::{record_ok_verification, recorded_backup},
    helpers::{Backend, Options, TestApp},
};

async fn health_run(app: &TestApp) -> Value {
    let r = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_status(&op, &["succeeded", "failed"]).await["status"], "succeeded");
    app.get(&format!("/api/v1/health/runs/{op}")).await.body
}

fn status(run: &Value, check: &str) -> Option<String> {
    let checks = run["checks"].as_array().unwrap();
    checks.iter().find(|c| c["check"] == check).map(|c| c["status"].as_str().unwrap().to_owned())
}

async fn each_vm_with_backups_has_freshness_and_verification_checks(backend: Backend) {
    let env = vec![("HYPERFLEET__BACKUPS__MAX_AGE_H".to_owned(), "24".to_owned())];
    let clock = hyperfleet_core::time::Clock::adjustable();
    let app = TestApp::spawn_with(backend, Options { env, clock: Some(clock.clone()), ..Options::default() }).await;
    let run = health_run(&app).await;
    assert_eq!(status(&run, "backup_freshness:web"), None, "no backups, no backup checks: {run:#}");

    let web = recorded_backup(&app, "hv1", "web").await;
    recorded_backup(&app, "hv1", "test").await;
    recorded_backup(&app, "hv2", "elsewhere").await;
    let core = app.core().await;
    let (view, _) = core.backup(hyperfleet_core::BackupId::parse(&web).unwrap()).await.unwrap();
    record_ok_verification(&core, &view.record).await;

    let run = health_run(&app).await;
    assert_eq!(status(&run, "backup_freshness:web").as_deref(), Some("ok"), "{run:#}");
    assert_eq!(status(&run, "backup_unverified:web").as_deref(), Some("ok"));
    assert_eq!(status(&run, "backup_freshness:test").as_deref(), Some("ok"));
    assert_eq!(status(&run, "backup_unverified:test").as_deref(), Some("warn"), "never verified");
    assert_eq!(status(&run, "backup_freshness:elsewhere"), None, "another host's VM");

    // A day and a bit later the newest backups are overdue; past twice the limit, an error.
    clock.advance(Duration::from_secs(30 * 3600));
    let run = health_run(&app).await;
    assert_eq!(status(&run, "backup_freshness:web").as_deref(), Some("warn"), "{run:#}");
    let age = run["checks"].as_array().unwrap().iter().find(|c| c["check"] == "backup_freshness:web").unwrap();
    assert_eq!((age["unit"].as_str(), age["thresholds"]["error"].as_f64()), (Some("h"), Some(48.0)));
    clock.advance(Duration::from_secs(20 * 3600));
    let run = health_run(&app).await;
    assert_eq!(status(&run, "backup_freshness:web").as_deref(), Some("error"));
    // A week after its verification, the web backup's is outdated.
    clock.advance(Duration::from_secs(7 * 86_400));
    let run = health_run(&app).await;
    assert_eq!(status(&run, "backup_unverified:web").as_deref(), Some("warn"), "{run:#}");
    let overview = app.get("/api/v1/health").await.body;
    assert!(overview.to_string().contains("backup_freshness:web"), "{overview:#}");
    app.stop().await;
}

crate::on_both_backends!(each_vm_with_backups_has_freshness_and_verification_checks);
