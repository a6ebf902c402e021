//! Crash safety under fire: 50 SIGKILLs of a worker at random points while
//! operations run on real QEMU VMs, each followed by a restart. Afterwards no
//! operation is left running, every accepted one succeeded or ended with a
//! recorded reason, every attempt row is closed, and the inventory equals
//! libvirt's view. Prints its counts (`cargo test crash_safety -- --nocapture`).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rand::Rng;
use serde_json::json;

use crate::{
    helpers::{Backend, Options},
    qemu::{QemuVm, available, inventory_state, qemu_app},
};

const CYCLES: usize = 50;
/// Each VM cycles through actions that all succeed when run in order.
const SCRIPT: [(&str, &str); 7] = [
    ("suspend", "{}"),
    ("resume", "{}"),
    ("reboot", "{}"),
    ("shutdown", r#"{"timeout_s": 1, "force": true}"#),
    ("start", "{}"),
    ("destroy", "{}"),
    ("start", "{}"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs libvirtd + QEMU: scripts/test.sh runs it with --ignored"]
async fn crash_safety_under_fire() {
    if !available() {
        return;
    }
    let vms: Vec<QemuVm> = (0..3).map(|_| QemuVm::define("hfc")).collect();
    // A load test of the workers, not of the API's per-token rate limit (the
    // submitters and the final read of every operation would exceed it).
    let opts = Options {
        worker: false,
        lease_s: 2,
        backoff_base_ms: 100,
        max_attempts: 10,
        env: crate::helpers::unlimited_rate(),
        ..Options::default()
    };
    let mut app = qemu_app(Backend::Postgres, opts).await;
    let mut pid = app.spawn_worker_process();
    app.wait_for(|| async {
        let r = app.get("/api/v1/vms").await;
        vms.iter().all(|vm| r.body["items"].as_array().unwrap().iter().any(|v| v["name"] == vm.name.as_str()))
    })
    .await;
    for vm in &vms {
        let r = app.post(&format!("/api/v1/vms/{}/start", vm.name), json!({})).await;
        assert_eq!(r.status, 202, "{}", r.body);
    }

    // Submit the scripts continuously while the worker is killed and restarted.
    let app = Arc::new(tokio::sync::Mutex::new(app));
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (client, address, token) = {
            let a = app.lock().await;
            (a.client.clone(), a.address.clone(), a.token.clone())
        };
        let names: Vec<String> = vms.iter().map(|v| v.name.clone()).collect();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut accepted = 0usize;
            let mut step = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (action, body) = SCRIPT[step % SCRIPT.len()];
                for name in &names {
                    let r = client
                        .post(format!("{address}/api/v1/vms/{name}/{action}"))
                        .header("content-type", "application/json")
                        .bearer_auth(&token)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 202);
                    accepted += 1;
                }
                step += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            accepted
        })
    };
    let started = Instant::now();
    for _ in 0..CYCLES {
        let wait = rand::rng().random_range(150..900);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let mut a = app.lock().await;
        a.kill_worker(pid);
        pid = a.spawn_worker_process();
    }
    stop.store(true, Ordering::Relaxed);
    let accepted = submitter.await.unwrap() + vms.len();
    let fire = started.elapsed();

    let app = Arc::into_inner(app).unwrap().into_inner();
    let deadline = Instant::now() + Duration::from_secs(180);
    let ops = loop {
        let ops = app.all_operations().await;
        if ops.iter().all(|o| !matches!(o["status"].as_str(), Some("queued" | "running" | "retrying"))) {
            break ops;
        }
        assert!(Instant::now() < deadline, "operations still unfinished 180 s after the last kill");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let (mut attempts, mut abandoned, mut open_attempts, mut unexplained) = (0, 0, 0, 0);
    for op in &ops {
        *by_status.entry(op["status"].as_str().unwrap().to_owned()).or_default() += 1;
        if op["status"] != "succeeded" {
            let why = format!("{} {}", op["kind"].as_str().unwrap_or("?"), op["error_code"].as_str().unwrap_or("?"));
            *failures.entry(why).or_default() += 1;
            if op["last_error"].as_str().is_none_or(str::is_empty) {
                unexplained += 1;
            }
        }
        let full = app.operation(op["id"].as_str().unwrap()).await;
        for a in full["attempts"].as_array().unwrap() {
            attempts += 1;
            if a["finished_at"].is_null() || a["outcome"].is_null() {
                open_attempts += 1;
            }
            if a["outcome"] == "abandoned" {
                abandoned += 1;
            }
        }
    }
    // The inventory converges on libvirt's view.
    let mut mismatched = Vec::new();
    for vm in &vms {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (seen, truth) = (inventory_state(&app, &vm.name).await, vm.domstate());
            if seen.0 == truth.0 {
                break;
            }
            if Instant::now() > deadline {
                mismatched.push((vm.name.clone(), seen, truth));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!(
        "crash-safety: {CYCLES} SIGKILLs in {:.1} s; {accepted} operations accepted, {} in the ledger {by_status:?}; \
         {attempts} attempts ({abandoned} abandoned by killed workers); lost 0 = {}; stuck running {}; \
         open attempts {open_attempts}; failures without a reason {unexplained}; inventory mismatches {}; \
         failures by kind and code {failures:?}",
        fire.as_secs_f64(),
        ops.len(),
        accepted - ops.len(),
        by_status.get("running").copied().unwrap_or(0),
        mismatched.len(),
    );
    assert_eq!(ops.len(), accepted, "every accepted operation is in the ledger");
    assert_eq!(open_attempts, 0, "every attempt row is closed");
    assert_eq!(unexplained, 0, "every operation that did not succeed has a recorded reason");
    assert!(abandoned > 0, "the kills hit running operations");
    assert!(mismatched.is_empty(), "inventory differs from libvirt: {mismatched:?}");
    app.stop().await;
}
