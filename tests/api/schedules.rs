//! Schedules: the API, exactly-once firing across several scheduler
//! processes, and missed ticks after all schedulers were down.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::json;
use sqlx::{Connection, Row};

use crate::helpers::{Backend, Options, TestApp};

async fn schedules_api_validates_and_describes(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    for (body, status, code) in [
        (json!({"name": "x", "cron": "61 * * * *", "kind": "noop"}), 422, "invalid_cron"),
        (json!({"name": "x", "cron": "* * *", "kind": "noop"}), 422, "invalid_cron"),
        (json!({"name": "x", "cron": "", "kind": "noop"}), 400, "invalid_body"),
        (json!({"name": "x", "cron": "* * * * *", "timezone": "Mars/Base", "kind": "noop"}), 422, "invalid_timezone"),
        (json!({"name": "x", "cron": "* * * * *", "kind": "vm.start"}), 422, "invalid_kind"),
        (json!({"name": "x", "cron": "* * * * *", "kind": "noop", "missed_ticks": "always"}), 400, "invalid_body"),
        (json!({"name": "x", "cron": "* * * * *", "kind": "vm.explode"}), 400, "invalid_body"),
        (json!({"name": "a b", "cron": "* * * * *", "kind": "noop"}), 400, "invalid_body"),
    ] {
        let r = app.post("/api/v1/schedules", body.clone()).await;
        assert_eq!((r.status, r.body["code"].as_str()), (status, Some(code)), "{body}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().len() > 10);
    }
    assert!(app.get("/api/v1/schedules").await.body["items"].as_array().unwrap().is_empty(), "nothing stored");

    let r = app
        .post(
            "/api/v1/schedules",
            json!({"name": "nightly", "cron": "30 3 * * *", "timezone": "Europe/Berlin", "kind": "noop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let upcoming = r.body["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 5);
    let first = upcoming[0].as_str().unwrap();
    assert!(first.contains("T03:30:00+01:00") || first.contains("T03:30:00+02:00"), "{first}");
    assert_eq!(r.body["missed_ticks"], "skip");

    let r = app
        .request(
            "PATCH",
            &format!("/api/v1/schedules/{id}"),
            Some(r#"{"cron": "*/10 * * * *", "timezone": "UTC"}"#),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["upcoming"][0].as_str().unwrap().ends_with("+00:00"));
    let r = app.request("PATCH", &format!("/api/v1/schedules/{id}"), Some(r#"{"cron": "nope"}"#), &[]).await;
    assert_eq!((r.status, r.body["code"].as_str()), (422, Some("invalid_cron")), "{}", r.body);
    assert_eq!(
        app.get(&format!("/api/v1/schedules/{id}")).await.body["cron"],
        "*/10 * * * *",
        "a bad patch changes nothing"
    );

    let r = app.post(&format!("/api/v1/schedules/{id}/trigger"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["schedule_id"], id.as_str());
    assert_eq!(r.body["requested_by"], "schedule:nightly");
    let s = app.get(&format!("/api/v1/schedules/{id}")).await.body;
    assert_eq!(s["fires"][0]["manual"], true);
    assert_eq!(s["fires"][0]["fired_by"], "admin");
    assert_eq!(s["last_outcome"], "queued");

    let audit = app.get("/api/v1/audit").await.body;
    assert_eq!(audit["items"][0]["action"], "schedule.update");
    assert_eq!(audit["items"][0]["before"]["cron"], "30 3 * * *");
    let r = app.request("DELETE", &format!("/api/v1/schedules/{id}"), None, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.get(&format!("/api/v1/schedules/{id}")).await.status, 404);
    app.stop().await;
}

/// `(fire_time as unix seconds, catch_up)` of every fire of `schedule`, by direct read of the ledger.
async fn fires(app: &TestApp, backend: Backend, schedule: &str) -> Vec<(i64, bool)> {
    let sql = "SELECT f.fire_time, f.catch_up, o.schedule_id IS NOT NULL AS linked FROM schedule_fires f \
               JOIN operations o ON o.id = f.operation_id WHERE f.schedule_id = $1 AND NOT f.manual ORDER BY f.fire_time";
    let rows: Vec<(hyperfleet_core::Timestamp, bool, bool)> = match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            let id = schedule.to_owned();
            sqlx::query(sql)
                .bind(id)
                .fetch_all(&mut c)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            let id = uuid::Uuid::parse_str(schedule).unwrap();
            sqlx::query(sql)
                .bind(id)
                .fetch_all(&mut c)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        }
    };
    assert!(rows.iter().all(|r| r.2), "every fire has its operation");
    rows.into_iter().map(|(t, c, _)| (t.0.timestamp(), c)).collect()
}

async fn wait_for_fires(app: &TestApp, backend: Backend, schedule: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while fires(app, backend, schedule).await.len() < n {
        assert!(Instant::now() < deadline, "fewer than {n} fires");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create(app: &TestApp, name: &str, missed: &str) -> String {
    let body = json!({"name": name, "cron": "* * * * * *", "kind": "noop", "missed_ticks": missed});
    let r = app.post("/api/v1/schedules", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn three_schedulers_fire_every_tick_exactly_once(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let id = create(&app, "every-second", "skip").await;
    let opts = app.options.clone();
    let pids: Vec<u32> = (0..3).map(|_| app.spawn_process(&["scheduler"], &opts)).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while fires(&app, backend, &id).await.len() < 32 {
        assert!(Instant::now() < deadline, "schedulers fired too few ticks");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for pid in pids {
        app.kill_worker(pid);
    }
    let fired = fires(&app, backend, &id).await;
    let times: Vec<i64> = fired.iter().map(|f| f.0).collect();
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for t in &times {
        *per_second.entry(*t).or_default() += 1;
    }
    assert!(per_second.values().all(|n| *n == 1), "a tick fired twice: {per_second:?}");
    let (first, last) = (times[0], *times.last().unwrap());
    assert_eq!(times.len() as i64, last - first + 1, "a tick was skipped while schedulers ran: {times:?}");
    let ops = app.all_operations().await;
    assert_eq!(ops.iter().filter(|o| o["schedule_id"] == id.as_str()).count(), times.len(), "one operation per tick");
    app.stop().await;
}

async fn missed_ticks_follow_the_policy(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let skip = create(&app, "skipper", "skip").await;
    let once = create(&app, "catcher", "run_once").await;
    let opts = app.options.clone();
    let pid = app.spawn_process(&["scheduler"], &opts);
    wait_for_fires(&app, backend, &skip, 3).await;
    app.kill_worker(pid);
    let down_at = chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = fires(&app, backend, &skip).await.len();
    app.spawn_process(&["scheduler"], &opts);
    wait_for_fires(&app, backend, &skip, before + 3).await;

    let skipped = fires(&app, backend, &skip).await;
    let gaps: Vec<i64> = skipped.windows(2).map(|w| w[1].0 - w[0].0).filter(|g| *g > 1).collect();
    assert_eq!(gaps.len(), 1, "one gap for the downtime: {skipped:?}");
    assert!(gaps[0] >= 5, "the missed ticks were not fired: {skipped:?}");
    assert!(skipped.iter().all(|f| !f.1), "skip never catches up");

    let caught = fires(&app, backend, &once).await;
    let catch_ups: Vec<&(i64, bool)> = caught.iter().filter(|f| f.1).collect();
    assert_eq!(catch_ups.len(), 1, "run_once fires once for the missed ticks: {caught:?}");
    assert!(catch_ups[0].0 >= down_at, "{caught:?}");
    app.stop().await;
}

crate::on_both_backends!(
    schedules_api_validates_and_describes,
    three_schedulers_fire_every_tick_exactly_once,
    missed_ticks_follow_the_policy,
);
