//! Workers that die or are stopped: nothing is left `running`, nothing is lost.

use std::time::Duration;

use crate::helpers::{Backend, Options, TestApp};

async fn killed_worker_operation_is_finished_by_another(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, Options { worker: false, lease_s: 3, ..Options::default() }).await;
    let first = app.spawn_worker_process();
    let id = app.noop(2_000, 0).await;
    let op = app.wait_status(&id, &["running"]).await;
    assert_eq!(op["attempt_count"], 1);
    app.kill_worker(first); // SIGKILL mid-operation
    let second = app.spawn_worker_process();

    let op = app.wait_status(&id, &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let attempts = op["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{op:#}");
    assert_eq!(attempts[0]["outcome"], "abandoned");
    assert_eq!(attempts[0]["error_class"], "abandoned");
    assert!(attempts[0]["finished_at"].is_string(), "the dead worker's attempt is closed");
    assert_eq!(attempts[1]["outcome"], "succeeded");
    assert_ne!(attempts[0]["worker"], attempts[1]["worker"]);
    app.terminate_worker(second);
    app.stop().await;
}

async fn sigterm_lets_running_operations_finish(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let pid = app.spawn_worker_process();
    let id = app.noop(1_500, 0).await;
    app.wait_status(&id, &["running"]).await;
    let status = app.terminate_worker(pid);
    assert!(status.success(), "worker exited with {status}");
    let op = app.operation(&id).await;
    assert_eq!(op["status"], "succeeded", "the running operation finished within the grace period: {op:#}");

    // Work submitted while no worker runs waits, and a new worker picks it up.
    let waiting = app.noop(0, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.operation(&waiting).await["status"], "queued");
    app.spawn_worker_process();
    app.wait_status(&waiting, &["succeeded"]).await;
    let log = std::fs::read_to_string(app.worker_log(0)).unwrap();
    assert!(log.contains("worker stopping"), "{log}");
    app.stop().await;
}

async fn sigterm_hands_back_what_does_not_finish_in_grace(backend: Backend) {
    let env = vec![("HYPERFLEET__WORKER__SHUTDOWN_GRACE_S".to_owned(), "1".to_owned())];
    let mut app = TestApp::spawn_with(backend, Options { worker: false, env, ..Options::default() }).await;
    let pid = app.spawn_worker_process();
    let id = app.noop(8_000, 0).await;
    app.wait_status(&id, &["running"]).await;
    let exit = app.terminate_worker(pid);
    assert!(exit.success(), "{exit}");
    let op = app.operation(&id).await;
    assert!(["retrying", "queued"].contains(&op["status"].as_str().unwrap()), "handed back: {op:#}");
    assert_eq!(op["attempts"][0]["outcome"], "abandoned");
    assert!(op["attempts"][0]["message"].as_str().unwrap().contains("handed back"), "{op:#}");
    app.spawn_worker_process();
    let op = app.wait_status(&id, &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["attempt_count"], 2);
    app.stop().await;
}

crate::on_both_backends!(
    killed_worker_operation_is_finished_by_another,
    sigterm_lets_running_operations_finish,
    sigterm_hands_back_what_does_not_finish_in_grace,
);
