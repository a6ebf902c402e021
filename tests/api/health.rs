//! Health checks with real measurements, their statuses, hysteresis, the
//! fleet checks, and the API over runs and state.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, private_libvirt_named};

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// Runs the health checks on `hv1` and returns the run with its checks.
async fn run(app: &TestApp) -> Value {
    let r = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    let done = app.wait_status(&op, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let r = app.get(&format!("/api/v1/health/runs/{op}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn check<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} in {run:#}"))
}

fn status(run: &Value, name: &str) -> String {
    check(run, name)["status"].as_str().unwrap().to_owned()
}

async fn a_run_measures_every_check(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = run(&app).await;
    let names: Vec<&str> = r["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    for expected in ["libvirt", "vm_states", "memory", "load", "kvm", "storage_pools"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("disk:data_dir:")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("fleet")), "fleet facts are the fleet monitor's alone: {names:?}");
    for ok in ["libvirt", "vm_states", "storage_pools"] {
        assert_eq!(status(&r, ok), "ok", "{ok}: {:#}", check(&r, ok));
    }
    let libvirt = check(&r, "libvirt");
    assert!(libvirt["value"].as_f64().unwrap() >= 0.0 && libvirt["unit"] == "ms");
    assert_eq!(libvirt["thresholds"]["warn"], 1000.0);
    let mem = check(&r, "memory")["value"].as_f64().unwrap();
    assert!(mem > 0.0 && mem < 100.0);

    let overview = app.get("/api/v1/health").await.body;
    assert_eq!(overview["hosts"][0]["host"], "hv1");
    assert!(overview["hosts"][0]["checks"].as_array().unwrap().len() >= 7);
    let runs = app.get("/api/v1/health/runs?host=hv1").await.body;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    let r = app.post("/api/v1/health/runs", json!({"host": "nohost"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("host_not_found")));
    app.stop().await;
}

async fn vm_states_from_the_domain_xml(backend: Backend) {
    for (runstate, expected) in [(6, "error"), (3, "warn")] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("states.xml");
        let xml = format!(
            "<node><domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>odd</name>\
             <memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os><test:runstate>{runstate}</test:runstate></domain>\
             <domain type='test'><name>fine</name><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain></node>"
        );
        std::fs::write(&path, xml).unwrap();
        let uri = format!("test://{}", path.display());
        let app = TestApp::spawn_with(backend, Options { libvirt_uri: Some(uri), ..Options::default() }).await;
        let r = run(&app).await;
        assert_eq!(status(&r, "vm_states"), expected, "runstate {runstate}: {:#}", check(&r, "vm_states"));
        assert!(check(&r, "vm_states")["message"].as_str().unwrap().contains("odd"));
        assert_eq!(r["status"], expected, "the run is as bad as its worst check");
        let events = app.get("/api/v1/health").await.body["events"].clone();
        assert!(
            events.as_array().unwrap().iter().any(|e| e["check"] == "vm_states" && e["to_status"] == expected),
            "{events:#}"
        );
        app.stop().await;
    }
}

async fn disk_statuses_from_thresholds_around_real_free_space(backend: Backend) {
    let probe = TestApp::spawn(backend).await;
    let disk = run(&probe).await["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"].as_str().unwrap().starts_with("disk:data_dir:"))
        .unwrap()
        .clone();
    let free = disk["value"].as_f64().unwrap();
    probe.stop().await;
    // (warn, error, clear) around the real free percentage; lower free is worse.
    for (warn, error, clear, expected) in [
        (free - 3.0, free - 6.0, free - 2.0, "ok"),
        (free + 3.0, free - 3.0, free + 4.0, "warn"),
        (free + 6.0, free + 3.0, free + 7.0, "error"),
    ] {
        let vars = env(&[
            ("HYPERFLEET__HEALTH__DISK_FREE_PCT__WARN", warn.to_string()),
            ("HYPERFLEET__HEALTH__DISK_FREE_PCT__ERROR", error.to_string()),
            ("HYPERFLEET__HEALTH__DISK_FREE_PCT__CLEAR", clear.to_string()),
            ("HYPERFLEET__HEALTH__DISK_FREE_PCT__FOR_S", "0".into()),
        ]);
        let app = TestApp::spawn_with(backend, Options { env: vars, ..Options::default() }).await;
        let r = run(&app).await;
        let d = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"].as_str().unwrap().starts_with("disk:data_dir:"))
            .unwrap();
        assert_eq!(d["status"], expected, "free {free:.2}%, warn {warn:.2} error {error:.2}: {d:#}");
        app.stop().await;
    }
}

async fn hysteresis_waits_for_the_threshold_to_hold(backend: Backend) {
    let probe = TestApp::spawn(backend).await;
    let used = check(&run(&probe).await, "memory")["value"].as_f64().unwrap();
    probe.stop().await;
    let vars = env(&[
        ("HYPERFLEET__HEALTH__MEMORY_USED_PCT__WARN", (used - 5.0).to_string()),
        ("HYPERFLEET__HEALTH__MEMORY_USED_PCT__ERROR", "1000".into()),
        ("HYPERFLEET__HEALTH__MEMORY_USED_PCT__CLEAR", (used - 10.0).to_string()),
        ("HYPERFLEET__HEALTH__MEMORY_USED_PCT__FOR_S", "3".into()),
    ]);
    let app = TestApp::spawn_with(backend, Options { env: vars, ..Options::default() }).await;
    let first = run(&app).await;
    let mem = check(&first, "memory");
    assert_eq!(
        (mem["raw_status"].as_str(), mem["status"].as_str()),
        (Some("warn"), Some("ok")),
        "not held yet: {mem:#}"
    );
    let overview = app.get("/api/v1/health").await.body;
    let state =
        overview["hosts"][0]["checks"].as_array().unwrap().iter().find(|c| c["check"] == "memory").unwrap().clone();
    assert_eq!(state["pending"], "warn", "{state:#}");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let later = run(&app).await;
    assert_eq!(status(&later, "memory"), "warn", "held for for_s: {:#}", check(&later, "memory"));
    let events = app.get("/api/v1/health").await.body["events"].clone();
    let memory_events: Vec<&Value> = events.as_array().unwrap().iter().filter(|e| e["check"] == "memory").collect();
    assert_eq!(memory_events.len(), 1, "{events:#}");
    assert_eq!(
        (memory_events[0]["from_status"].as_str(), memory_events[0]["to_status"].as_str()),
        (Some("ok"), Some("warn"))
    );
    app.stop().await;
}

async fn fleet_facts_are_alerted_once_by_the_fleet_monitor(backend: Backend) {
    let vars = env(&[
        ("HYPERFLEET__ALERTS__MONITOR_INTERVAL_S", "1".into()),
        ("HYPERFLEET__ALERTS__BACKLOG_THRESHOLD_S", "1".into()),
    ]);
    let mut app = TestApp::spawn_with(backend, Options { env: vars, scheduler: true, ..Options::default() }).await;
    // A second host whose worker dies, with work waiting for it.
    let uri = private_libvirt_named(app.dir.path(), "hv2.xml", &["far"]);
    let opts = Options { host: "hv2".into(), libvirt_uri: Some(uri), scheduler: false, ..app.options.clone() };
    let pid = app.spawn_worker_process_with(&opts);
    app.wait_for(|| async { app.get("/api/v1/vms/far").await.status == 200 }).await;
    app.kill_worker(pid);
    app.wait_for(|| async { app.get("/api/v1/hosts/hv2").await.body["status"] == "offline" }).await;
    let r = app.post("/api/v1/vms/far/suspend", json!({})).await;
    assert_eq!(r.status, 202);
    let firing = || async {
        let alerts = app.get("/api/v1/alerts?status=firing").await.body;
        alerts["items"].as_array().unwrap().iter().map(|a| a["dedup_key"].as_str().unwrap().to_owned()).collect()
    };
    app.wait_for(|| async {
        let keys: Vec<String> = firing().await;
        keys.iter().any(|k| k == "fleet:hv2:worker-offline")
            && keys.iter().any(|k| k == "fleet:backlog:hyperfleet.host.hv2")
    })
    .await;
    // The health run of hv1 measures its own host only: no second alert for the same facts.
    let r = run(&app).await;
    let names: Vec<&str> = r["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|n| n.starts_with("fleet")), "{names:?}");
    let keys: Vec<String> = firing().await;
    let about_hv2 = keys.iter().filter(|k| k.contains("hv2")).count();
    assert_eq!(about_hv2, 2, "one alert per fact (offline, backlog): {keys:?}");
    app.stop().await;
}

async fn kvm_is_a_warning_on_emulation_only_hosts(backend: Backend) {
    let vars = env(&[
        ("HYPERFLEET__HEALTH__KVM_DEVICE", "/nonexistent/kvm".into()),
        ("HYPERFLEET__HEALTH__EMULATION_ONLY", "true".into()),
        ("HYPERFLEET__HEALTH__LIBVIRT_RESPONSE_MS__WARN", "0".into()),
        ("HYPERFLEET__HEALTH__LIBVIRT_RESPONSE_MS__CLEAR", "0".into()),
    ]);
    let app = TestApp::spawn_with(backend, Options { env: vars, ..Options::default() }).await;
    let r = run(&app).await;
    assert_eq!(status(&r, "kvm"), "warn", "{:#}", check(&r, "kvm"));
    assert!(check(&r, "kvm")["message"].as_str().unwrap().contains("emulation only"));
    assert_eq!(status(&r, "libvirt"), "warn", "any answer time is past a 0 ms threshold");
    app.stop().await;
}

async fn the_default_schedules_run_health_on_every_host(backend: Backend) {
    let vars = env(&[("HYPERFLEET__SCHEDULER__DEFAULT_SCHEDULES", "true".into())]);
    let app = TestApp::spawn_with(backend, Options { env: vars, ..Options::default() }).await;
    // The in-process app has no scheduler; `start` creates the defaults only with one.
    assert!(app.get("/api/v1/schedules").await.body["items"].as_array().unwrap().is_empty());
    let core = app.core().await;
    core.ensure_default_schedules().await.unwrap();
    let items = app.get("/api/v1/schedules").await.body["items"].clone();
    let names: Vec<&str> = items.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["backup-verify", "health", "ledger-prune"], "no default schedule runs a stub");
    let health = items.as_array().unwrap().iter().find(|s| s["name"] == "health").unwrap();
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", health["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["kind"], "health.run");
    assert_eq!(r.body["host"], "hv1", "fanned out to the registered host");
    let done = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    // Every default schedule, triggered, ends without a failure.
    let prune = items.as_array().unwrap().iter().find(|s| s["name"] == "ledger-prune").unwrap();
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", prune["id"].as_str().unwrap()), json!({})).await;
    let done = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    // The weekly backup verification plans on every host (nothing to verify here yet).
    let verify = items.as_array().unwrap().iter().find(|s| s["name"] == "backup-verify").unwrap();
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", verify["id"].as_str().unwrap()), json!({})).await;
    assert_eq!((r.body["kind"].as_str(), r.body["host"].as_str()), (Some("backup.verify"), Some("hv1")), "{}", r.body);
    let done = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!((done["status"].as_str(), done["result"]["planned"].as_u64()), (Some("succeeded"), Some(0)), "{done:#}");
    core.ensure_default_schedules().await.unwrap();
    assert_eq!(core.schedules().await.unwrap().len(), 3, "defaults are created once");
    app.stop().await;
}

async fn thresholds_drive_each_check_to_each_status(backend: Backend) {
    // Every measured value is >= 0: thresholds below zero put it past them.
    let checks = ["load_per_cpu_pct", "memory_used_pct", "libvirt_response_ms"];
    for (warn, error, clear, expected) in [("-1", "1000000000", "-2", "warn"), ("-2", "-1", "-3", "error")] {
        let mut vars = vec![("HYPERFLEET__HEALTH__KVM_DEVICE".to_owned(), "/dev/null".to_owned())];
        for c in checks {
            let key = c.to_ascii_uppercase();
            vars.push((format!("HYPERFLEET__HEALTH__{key}__WARN"), warn.into()));
            vars.push((format!("HYPERFLEET__HEALTH__{key}__ERROR"), error.into()));
            vars.push((format!("HYPERFLEET__HEALTH__{key}__CLEAR"), clear.into()));
            vars.push((format!("HYPERFLEET__HEALTH__{key}__FOR_S"), "0".into()));
        }
        let app = TestApp::spawn_with(backend, Options { env: vars, ..Options::default() }).await;
        let r = run(&app).await;
        for name in ["load", "memory", "libvirt"] {
            assert_eq!(status(&r, name), expected, "{name}: {:#}", check(&r, name));
        }
        assert_eq!(status(&r, "kvm"), "ok", "a device that opens read-write: {:#}", check(&r, "kvm"));
        assert_eq!(r["status"], expected);
        app.stop().await;
    }
}

/// A run that was accepted but has not measured yet is readable: the run is its
/// operation until then (a client that follows a 202 never meets a 404).
async fn an_accepted_run_is_readable_before_it_measures(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    // A registered host whose worker is not running: its run waits in the queue.
    let store = hyperfleet_core::store::Store::connect(&app.database_url, hyperfleet_core::store::PoolConfig::new(1))
        .await
        .unwrap();
    store.register_host("hv1", "test:///default", "absent-worker", "test", 5).await.unwrap();
    store.close().await;
    let r = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/api/v1/health/runs/{op}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["operation_status"].as_str(), r.body.get("status")), (Some("queued"), None), "{}", r.body);
    let r = app.get("/api/v1/health/runs/01a21473-2ed8-711f-b864-66188e1ddf85").await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("health_run_not_found")));
    app.stop().await;
}

crate::on_both_backends!(
    an_accepted_run_is_readable_before_it_measures,
    thresholds_drive_each_check_to_each_status,
    a_run_measures_every_check,
    vm_states_from_the_domain_xml,
    disk_statuses_from_thresholds_around_real_free_space,
    hysteresis_waits_for_the_threshold_to_hold,
    fleet_facts_are_alerted_once_by_the_fleet_monitor,
    kvm_is_a_warning_on_emulation_only_hosts,
    the_default_schedules_run_health_on_every_host,
);
