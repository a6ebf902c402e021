//! A fleet: several worker processes, each bound to its own libvirt host,
//! against one database. Work reaches only its host; a host whose worker dies
//! goes offline within a bounded time and its work waits for it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, private_libvirt_named};

async fn operations_reach_only_their_host_and_wait_for_it(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let hosts = [("hv-a", ["alpha", "shared"]), ("hv-b", ["beta", "shared"])];
    let mut workers = Vec::new();
    for (host, domains) in hosts {
        let uri = private_libvirt_named(app.dir.path(), &format!("{host}.xml"), &domains);
        let opts = Options { host: host.into(), libvirt_uri: Some(uri), ..app.options.clone() };
        workers.push((app.spawn_worker_process_with(&opts), opts));
    }
    app.wait_for(|| async { app.get("/api/v1/vms").await.body["items"].as_array().is_some_and(|v| v.len() == 4) })
        .await;

    // Each VM's operation runs on its own host's worker.
    for (vm, host) in [("alpha", "hv-a"), ("beta", "hv-b")] {
        let r = app.post(&format!("/api/v1/vms/{vm}/suspend"), json!({})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["host"], host);
        let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
        assert_eq!(op["status"], "succeeded", "{op:#}");
        assert_eq!(op["attempts"][0]["host"], host);
        assert!(op["attempts"][0]["worker"].as_str().unwrap().starts_with(host));
    }
    // A name on several hosts needs `host`.
    let r = app.post("/api/v1/vms/shared/suspend", json!({})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "ambiguous_vm");
    assert!(r.body["message"].as_str().unwrap().contains("hv-a, hv-b"), "{}", r.body);
    let r = app.post("/api/v1/vms/shared/suspend?host=hv-b", json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(op["attempts"][0]["host"], "hv-b");
    let vms = app.get("/api/v1/vms").await.body["items"].clone();
    let state = |host: &str| {
        vms.as_array().unwrap().iter().find(|v| v["name"] == "shared" && v["host"] == host).unwrap()["state"].clone()
    };
    assert_eq!((state("hv-a"), state("hv-b")), (json!("running"), json!("paused")));

    // Kill hv-b's worker: the host goes offline within three heartbeats (1 s each) plus slack.
    let (pid_b, opts_b) = workers.remove(1);
    app.kill_worker(pid_b);
    let killed = Instant::now();
    app.wait_for(|| async { app.get("/api/v1/hosts/hv-b").await.body["status"] == "offline" }).await;
    assert!(killed.elapsed() < Duration::from_secs(8), "offline after {:?}", killed.elapsed());
    assert_eq!(app.get("/api/v1/hosts/hv-a").await.body["status"], "online");

    // Work for the offline host is accepted, says why it waits, and waits. (The test
    // driver's state lives in the worker process: the restarted one sees `beta` running.)
    let r = app.post("/api/v1/vms/beta/suspend", json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(r.body["warnings"][0].as_str().unwrap().contains("offline"), "{}", r.body);
    let waiting = r.body["id"].as_str().unwrap().to_owned();
    // The other host keeps working meanwhile.
    let r = app.post("/api/v1/vms/alpha/resume", json!({})).await;
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(app.operation(&waiting).await["status"], "queued");

    // hv-b's restarted worker picks its waiting operation up.
    app.spawn_worker_process_with(&opts_b);
    let op = app.wait_status(&waiting, &["succeeded", "failed"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert!(op.get("warnings").is_none());
    app.wait_for(|| async { app.get("/api/v1/hosts/hv-b").await.body["status"] == "online" }).await;
    app.stop().await;
}

crate::on_both_backends!(operations_reach_only_their_host_and_wait_for_it);
