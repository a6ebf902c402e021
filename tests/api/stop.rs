//! The all-in-one `hyperfleet up` stopped under load, as a process: SIGTERM
//! right after a burst ends within the grace period with status 0, and a
//! SIGKILL while clients submit loses nothing. Either way every 202 finishes
//! after a restart and nothing stays `running`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, free_port, unlimited_rate};

/// The grace period the test processes run with (`env_for`).
const GRACE: Duration = Duration::from_secs(10);

/// Starts `hyperfleet up` as a process on its own port, against `app`'s database.
async fn spawn_up(app: &mut TestApp) -> (u32, String) {
    let port = free_port();
    let mut options = app.options.clone();
    options.env.push(("HYPERFLEET__API__LISTEN".into(), format!("127.0.0.1:{port}")));
    let pid = app.spawn_process(&["up"], &options);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    app.wait_for(|| async { client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) })
        .await;
    (pid, base)
}

/// Submits noops to `base` until `stop`; returns the ids answered 202 (a
/// request without an answer, as when the process is killed, accepted nothing).
async fn submit(base: String, token: String, stop: Arc<AtomicBool>, limit: usize, sleep_ms: u64) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    while !stop.load(Ordering::Relaxed) && accepted.len() < limit {
        let sent = client
            .post(format!("{base}/api/v1/diagnostics/noop"))
            .bearer_auth(&token)
            .json(&json!({ "sleep_ms": sleep_ms }))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let Ok(resp) = sent else { continue };
        if resp.status().as_u16() == 202 {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            if let Some(id) = body["id"].as_str() {
                accepted.push(id.to_owned());
            }
        }
    }
    accepted
}

async fn every_one_succeeds(app: &TestApp, accepted: &[String]) {
    for id in accepted {
        app.wait_status(id, &["succeeded"]).await;
    }
    let ops = app.all_operations().await;
    let running = ops.iter().filter(|op| op["status"] == "running" || op["status"] == "queued").count();
    assert_eq!(running, 0, "nothing stays queued or running");
}

async fn sigterm_right_after_a_burst_ends_in_grace(backend: Backend) {
    let options = Options { worker: false, env: unlimited_rate(), ..Options::default() };
    let mut app = TestApp::spawn_with(backend, options).await;
    let (pid, base) = spawn_up(&mut app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> =
        (0..16).map(|_| tokio::spawn(submit(base.clone(), app.token.clone(), stop.clone(), 100, 200))).collect();
    let mut accepted = Vec::new();
    for c in clients {
        accepted.extend(c.await.unwrap());
    }
    let backlog = app.get("/api/v1/operations?status=queued&limit=500").await.body["items"].as_array().unwrap().len();
    let limit = GRACE + Duration::from_secs(10);
    let (status, took) = app.terminate_within(pid, limit).expect("`up` exited after SIGTERM");
    println!(
        "{backend:?}: SIGTERM after a burst of {} (at least {backlog} still queued): exited {status} in {took:?}",
        accepted.len()
    );
    assert!(status.success(), "exit status {status}");
    assert!(backlog > 0, "the burst left a backlog to stop in front of");

    app.spawn_worker_process();
    every_one_succeeds(&app, &accepted).await;
    app.stop().await;
}

crate::on_both_backends!(sigterm_right_after_a_burst_ends_in_grace);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_up_while_clients_submit_loses_nothing() {
    let options = Options { worker: false, env: unlimited_rate(), ..Options::default() };
    let mut app = TestApp::spawn_with(Backend::Sqlite, options).await;
    let (pid, base) = spawn_up(&mut app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> =
        (0..8).map(|_| tokio::spawn(submit(base.clone(), app.token.clone(), stop.clone(), usize::MAX, 20))).collect();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.kill_worker(pid);
    stop.store(true, Ordering::Relaxed);
    let mut accepted = Vec::new();
    for c in clients {
        accepted.extend(c.await.unwrap());
    }
    println!("SIGKILL of `up` after {:?}: {} accepted", started.elapsed(), accepted.len());
    assert!(!accepted.is_empty());
    spawn_up(&mut app).await;
    every_one_succeeds(&app, &accepted).await;
    println!("after the restart: all {} accepted operations succeeded", accepted.len());
    app.stop().await;
}
