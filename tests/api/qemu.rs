//! Real libvirtd + QEMU (TCG): small diskless VMs driven through Hyperfleet,
//! with the inventory checked against `virsh domstate --reason` after each
//! step. A diskless guest never answers ACPI: the shutdown timeout's case.
//!
//! They are `#[ignore]`d, so a plain `cargo test` reports them as ignored,
//! never as passed. The README's test command starts libvirtd
//! (`scripts/libvirtd.sh`), sets `HYPERFLEET_REQUIRE_QEMU=1` and runs them
//! with `--ignored`: there they must run.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp};

pub const URI: &str = "qemu:///system";

fn virsh(args: &[&str]) -> std::process::Output {
    Command::new("virsh").arg("-c").arg(URI).args(args).output().expect("running virsh")
}

/// Whether real QEMU tests can run here; panics when they are required but cannot.
pub fn available() -> bool {
    let ok = Command::new("virsh").args(["-c", URI, "version"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("HYPERFLEET_REQUIRE_QEMU").as_deref() != Ok("1"),
            "HYPERFLEET_REQUIRE_QEMU=1 but libvirtd does not answer on {URI}"
        );
        eprintln!("REAL-QEMU TESTS SKIPPED: libvirtd does not answer on {URI} (run scripts/libvirtd.sh start)");
    }
    ok
}

/// A diskless 64 MiB TCG domain, undefined again on drop.
pub struct QemuVm {
    pub name: String,
}

impl QemuVm {
    pub fn define(prefix: &str) -> Self {
        let name = format!("{prefix}-{}", ulid::Ulid::new().to_string()[20..].to_lowercase());
        let xml = include_str!("../fixtures/qemu-domain.xml").replace("@NAME@", &name);
        let file = std::env::temp_dir().join(format!("{name}.xml"));
        std::fs::write(&file, xml).unwrap();
        let out = virsh(&["define", file.to_str().unwrap()]);
        assert!(out.status.success(), "virsh define: {}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_file(file);
        Self { name }
    }

    /// `(state, reason)` as `virsh domstate --reason` prints them, in the inventory's words.
    pub fn domstate(&self) -> (String, String) {
        let out = virsh(&["domstate", "--reason", &self.name]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (state, reason) = text.split_once(" (").unwrap_or((&text, ")"));
        let state = match state {
            "shut off" => "shutoff",
            "in shutdown" => "shutdown",
            "idle" => "blocked",
            "no state" => "nostate",
            "pmsuspended" => "pmsuspended",
            other => other,
        };
        (state.to_owned(), reason.trim_end_matches(')').to_owned())
    }
}

impl Drop for QemuVm {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", &self.name]);
        let _ = virsh(&["undefine", &self.name]);
    }
}

pub async fn qemu_app(backend: Backend, opts: Options) -> TestApp {
    TestApp::spawn_with(backend, Options { libvirt_uri: Some(URI.into()), host: "qemu1".into(), ..opts }).await
}

/// The inventory's `(state, state_reason)` of `vm`.
pub async fn inventory_state(app: &TestApp, vm: &str) -> (String, String) {
    let r = app.get(&format!("/api/v1/vms/{vm}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (r.body["state"].as_str().unwrap().into(), r.body["state_reason"].as_str().unwrap().into())
}

async fn act(app: &TestApp, vm: &QemuVm, action: &str, body: Value) -> Value {
    let r = app.post(&format!("/api/v1/vms/{}/{action}", vm.name), body).await;
    assert_eq!(r.status, 202, "{action}: {}", r.body);
    app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await
}

async fn real_qemu_lifecycle(backend: Backend) {
    if !available() {
        return;
    }
    let vm = QemuVm::define("hfq");
    let app = qemu_app(backend, Options::default()).await;
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;
    assert_eq!(inventory_state(&app, &vm.name).await, vm.domstate());

    let steps = [
        ("start", json!({}), "running", "booted"),
        ("reboot", json!({}), "running", ""),
        ("suspend", json!({}), "paused", "user"),
        ("resume", json!({}), "running", "unpaused"),
    ];
    for (action, body, state, reason) in steps {
        let op = act(&app, &vm, action, body).await;
        assert_eq!(op["status"], "succeeded", "{action}: {op:#}");
        let seen = inventory_state(&app, &vm.name).await;
        assert_eq!(seen, vm.domstate(), "after {action}: the inventory matches virsh");
        assert_eq!(seen.0, state, "after {action}");
        if !reason.is_empty() {
            assert_eq!(seen.1, reason, "after {action}");
        }
    }

    // A diskless guest ignores ACPI: without force the shutdown times out and the VM keeps running.
    let op = act(&app, &vm, "shutdown", json!({"timeout_s": 3})).await;
    assert_eq!(op["status"], "failed", "{op:#}");
    assert_eq!(op["error_class"], "timeout");
    assert_eq!(op["error_code"], "shutdown_timeout");
    assert_eq!(op["attempt_count"], 1, "a timeout is not retried");
    assert_eq!(op["attempts"][0]["error_class"], "timeout");
    assert_eq!(vm.domstate().0, "running");
    assert_eq!(inventory_state(&app, &vm.name).await, vm.domstate());

    // With force it is destroyed after the timeout, and the result and the attempt say so.
    let op = act(&app, &vm, "shutdown", json!({"timeout_s": 2, "force": true})).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["result"]["forced"], true);
    assert!(op["attempts"][0]["message"].as_str().unwrap().contains("destroyed"), "{op:#}");
    assert_eq!(vm.domstate(), ("shutoff".to_owned(), "destroyed".to_owned()));
    assert_eq!(inventory_state(&app, &vm.name).await, vm.domstate());

    let op = act(&app, &vm, "start", json!({})).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let op = act(&app, &vm, "destroy", json!({})).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(vm.domstate(), ("shutoff".to_owned(), "destroyed".to_owned()));
    assert_eq!(inventory_state(&app, &vm.name).await, vm.domstate());

    // A wrong state is a permanent failure with libvirt's view in the message.
    let op = act(&app, &vm, "resume", json!({})).await;
    assert_eq!((op["status"].as_str(), op["error_code"].as_str()), (Some("failed"), Some("invalid_vm_state")));
    app.stop().await;
}

async fn sigterm_mid_shutdown_finishes_and_restart_repeats_nothing(backend: Backend) {
    if !available() {
        return;
    }
    let vm = QemuVm::define("hfg");
    let mut app = qemu_app(backend, Options { worker: false, ..Options::default() }).await;
    let pid = app.spawn_worker_process();
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;
    let op = act(&app, &vm, "start", json!({})).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");

    let r = app.post(&format!("/api/v1/vms/{}/shutdown", vm.name), json!({"timeout_s": 3, "force": true})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    app.wait_status(&id, &["running"]).await;
    let exit = app.terminate_worker(pid); // SIGTERM while it waits for the guest
    assert!(exit.success(), "{exit}");
    let op = app.operation(&id).await;
    assert_eq!(op["status"], "succeeded", "finished within the grace period: {op:#}");
    assert_eq!(op["attempt_count"], 1);
    assert_eq!(vm.domstate().0, "shutoff");

    app.spawn_worker_process();
    let op = act(&app, &vm, "start", json!({})).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(app.operation(&id).await["attempt_count"], 1, "the restarted worker did not repeat the shutdown");
    app.wait_for(|| async { inventory_state(&app, &vm.name).await.0 == "running" }).await;
    app.stop().await;
}

crate::on_both_backends_with_qemu!(real_qemu_lifecycle, sigterm_mid_shutdown_finishes_and_restart_repeats_nothing);
