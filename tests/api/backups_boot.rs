//! The boot verification level on real QEMU (`#[ignore]`d lane, see
//! `qemu.rs`): the backed-up content is what boots (a nonce the test wrote),
//! the backup is never written, the test domain has no network and is gone
//! afterwards — also when the worker is SIGKILLed in the middle.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

use crate::{
    backups_qemu::{backup, backup_alerts, define_with_disk, define_with_os, make_disk, rehash, run, sha256_file},
    helpers::{Backend, Options, TestApp},
    qemu::{URI, available, qemu_app},
};

const MARKER: &str = "HYPERFLEET-BOOT-OK nonce-[a-z0-9]+";

fn scratch() -> PathBuf {
    // Not a TempDir: libvirt's QEMU user must reach the disks and overlays.
    let root = std::env::temp_dir().join(format!("hf-boot-{}", ulid::Ulid::new().to_string().to_lowercase()));
    std::fs::create_dir(&root).unwrap();
    root
}

fn backups_env(dir: &Path) -> Vec<(String, String)> {
    vec![("HYPERFLEET__BACKUPS__DIR".to_owned(), dir.display().to_string())]
}

/// Starts a verification and waits for its operation to end.
async fn verify_op(app: &TestApp, id: &str, body: Value) -> Value {
    let r = app.post(&format!("/api/v1/backups/{id}/verify"), body).await;
    assert_eq!(r.status, 202, "{}", r.body);
    app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await
}

/// A boot verification that must have run; its result.
async fn boot_verify(app: &TestApp, id: &str, timeout_s: u32) -> Value {
    let op = verify_op(app, id, json!({ "level": "boot", "boot_marker": MARKER, "boot_timeout_s": timeout_s })).await;
    assert_eq!(op["status"], "succeeded", "a bad backup is a verification that ran: {op:#}");
    op["result"].clone()
}

fn domain_exists(name: &str) -> bool {
    std::process::Command::new("virsh").args(["-c", URI, "domstate", name]).output().unwrap().status.success()
}

/// The names of running boot-test domains whose overlays are under `root`.
fn boot_domains_under(root: &Path) -> Vec<String> {
    let out = run("virsh", &["-c", URI, "list", "--name"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with("hf-verify-"))
        .filter(|n| {
            let xml = std::process::Command::new("virsh").args(["-c", URI, "dumpxml", n]).output().unwrap();
            String::from_utf8_lossy(&xml.stdout).contains(&*root.to_string_lossy())
        })
        .map(str::to_owned)
        .collect()
}

/// `(path, sha256, mtime in ns)` of every file of a backup.
fn fingerprint(dir: &Path) -> Vec<(String, String, i128)> {
    let mut out = Vec::new();
    for name in ["manifest.json", "domain.xml", "disks/vda.qcow2"] {
        let meta = std::fs::metadata(dir.join(name)).unwrap();
        let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        out.push((name.to_owned(), sha256_file(&dir.join(name)), mtime));
    }
    out
}

fn leftovers(backups_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(backups_dir.join(".verify")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// Rewrites `bytes` at `offset` of the guest disk inside a qcow2 image (through a raw copy).
fn patch_qcow2(image: &Path, offset: usize, bytes: &[u8]) {
    let raw = image.with_extension("raw");
    run("qemu-img", &["convert", "-f", "qcow2", "-O", "raw", image.to_str().unwrap(), raw.to_str().unwrap()]);
    let mut data = std::fs::read(&raw).unwrap();
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(&raw, data).unwrap();
    run("qemu-img", &["convert", "-f", "raw", "-O", "qcow2", raw.to_str().unwrap(), image.to_str().unwrap()]);
    std::fs::remove_file(raw).unwrap();
}

async fn boot_verification_boots_what_was_backed_up(backend: Backend) {
    if !available() {
        return;
    }
    let root = scratch();
    let (disk, nonce_a) = make_disk(&root);
    let vm = define_with_disk("hfv", &disk);
    let backups_dir = root.join("backups");
    let app = qemu_app(backend, Options { env: backups_env(&backups_dir), ..Options::default() }).await;
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;

    let b = backup(&app, &vm.name).await;
    let id = b["id"].as_str().unwrap();
    let dir = PathBuf::from(b["dir"].as_str().unwrap());
    let before = fingerprint(&dir);

    // The guest booted from the backup prints the nonce the test wrote into it.
    let result = boot_verify(&app, id, 60).await;
    assert_eq!((result["result"].as_str(), result["level"].as_str()), (Some("ok"), Some("boot")), "{result:#}");
    let boot = &result["boot"];
    assert!(boot["console_tail"].as_str().unwrap().contains(&format!("HYPERFLEET-BOOT-OK {nonce_a}")), "{boot:#}");
    assert!(boot["marker_after_ms"].as_u64().is_some(), "{boot:#}");
    eprintln!("boot verification: marker after {} ms", boot["marker_after_ms"]);
    assert!(!domain_exists(boot["domain"].as_str().unwrap()), "the test domain is gone");
    assert!(leftovers(&backups_dir).is_empty(), "the overlays are gone: {:?}", leftovers(&backups_dir));
    let shown = app.get(&format!("/api/v1/backups/{id}")).await.body;
    assert_eq!(
        (shown["verification"].as_str(), shown["verifications"][0]["level"].as_str()),
        (Some("ok"), Some("boot"))
    );
    let recorded = &shown["verifications"][0]["details"]["boot"];
    assert_eq!(recorded["console_tail"], boot["console_tail"], "the record keeps the console");
    assert_eq!(recorded["marker_after_ms"], boot["marker_after_ms"]);

    // The live disk now says nonce B: the old backup still boots nonce A.
    let nonce_b = format!("nonce-{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut bytes = std::fs::read(&disk).unwrap();
    bytes[512..512 + nonce_b.len()].copy_from_slice(nonce_b.as_bytes());
    std::fs::write(&disk, bytes).unwrap();
    let result = boot_verify(&app, id, 60).await;
    let tail = result["boot"]["console_tail"].as_str().unwrap();
    assert!(tail.contains(&nonce_a) && !tail.contains(&nonce_b), "{result:#}");
    assert_eq!(fingerprint(&dir), before, "booting never wrote the backup (sha256 and mtime unchanged)");

    // No boot signature (the manifest re-hashed to match): nothing boots, `boot_timeout` after ~5 s.
    let image = dir.join("disks/vda.qcow2");
    patch_qcow2(&image, 510, &[0, 0]);
    rehash(&app, backend, &b).await;
    let result = boot_verify(&app, id, 5).await;
    assert_eq!(
        (result["result"].as_str(), result["code"].as_str()),
        (Some("failed"), Some("boot_timeout")),
        "{result:#}"
    );
    assert!(result["boot"]["marker_after_ms"].is_null(), "{result:#}");
    assert!(!domain_exists(result["boot"]["domain"].as_str().unwrap()));
    assert!(leftovers(&backups_dir).is_empty());
    let alerts = backup_alerts(&app).await;
    assert_eq!((alerts[0]["severity"].as_str(), alerts[0]["status"].as_str()), (Some("critical"), Some("firing")));

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

/// SIGKILL during a boot test: libvirt destroys the test domain with the
/// worker's connection, the next worker sweeps the overlays and its retry
/// succeeds; a cancel during a boot test leaves nothing either. The domain seen while it ran had no network interface, host
/// device or shared filesystem. (The VM's boot menu waits 4 s before
/// booting, so the test has time to look at the running domain.)
async fn a_killed_boot_test_leaves_nothing_and_its_retry_succeeds(backend: Backend) {
    if !available() {
        return;
    }
    let root = scratch();
    let (disk, nonce) = make_disk(&root);
    let vm = define_with_os("hfvk", &disk, "<bootmenu enable='yes' timeout='4000'/>");
    let backups_dir = root.join("backups");
    let options = Options { env: backups_env(&backups_dir), worker: false, lease_s: 3, ..Options::default() };
    let mut app = qemu_app(backend, options).await;
    let worker = app.spawn_worker_process();
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;
    let b = backup(&app, &vm.name).await;

    let r = app
        .post(
            &format!("/api/v1/backups/{}/verify", b["id"].as_str().unwrap()),
            json!({ "level": "boot", "boot_marker": MARKER, "boot_timeout_s": 120 }),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op_id = r.body["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    app.wait_for(|| {
        seen = boot_domains_under(&backups_dir);
        std::future::ready(!seen.is_empty())
    })
    .await;
    let name = seen[0].clone();
    let xml = String::from_utf8(run("virsh", &["-c", URI, "dumpxml", &name]).stdout).unwrap();
    for absent in ["<interface", "<hostdev", "<filesystem", "<graphics"] {
        assert!(!xml.contains(absent), "{absent} in the boot test's domain: {xml}");
    }
    assert!(xml.contains(&*backups_dir.join(".verify").to_string_lossy()), "its disks are overlays: {xml}");
    assert!(!leftovers(&backups_dir).is_empty());
    app.kill_worker(worker);

    app.wait_for(|| std::future::ready(!domain_exists(&name))).await;
    app.spawn_worker_process();
    let op = app.wait_status(&op_id, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!((op["status"].as_str(), op["attempt_count"].as_u64()), (Some("succeeded"), Some(2)), "{op:#}");
    assert_eq!(op["result"]["result"], "ok", "{op:#}");
    assert!(op["result"]["boot"]["console_tail"].as_str().unwrap().contains(&nonce), "{op:#}");
    assert!(leftovers(&backups_dir).is_empty(), "swept: {:?}", leftovers(&backups_dir));
    assert!(boot_domains_under(&backups_dir).is_empty());

    // A cancel during the boot test ends it the same way: nothing remains.
    let r = app
        .post(
            &format!("/api/v1/backups/{}/verify", b["id"].as_str().unwrap()),
            json!({ "level": "boot", "boot_marker": MARKER, "boot_timeout_s": 120 }),
        )
        .await;
    let op_id = r.body["id"].as_str().unwrap().to_owned();
    app.wait_for(|| std::future::ready(!boot_domains_under(&backups_dir).is_empty())).await;
    let r = app.post(&format!("/api/v1/operations/{op_id}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let op = app.wait_status(&op_id, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(op["status"], "cancelled", "{op:#}");
    assert!(boot_domains_under(&backups_dir).is_empty() && leftovers(&backups_dir).is_empty());

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

/// A domain with firmware variables (`<nvram>`; SeaBIOS stands in for UEFI
/// firmware as the pflash loader): the backup holds `nvram.fd`, and the boot
/// test boots with a copy of it, never writing the backup's.
async fn the_nvram_is_backed_up_and_booted_from_a_copy(backend: Backend) {
    if !available() {
        return;
    }
    let root = scratch();
    let (disk, nonce) = make_disk(&root);
    let vars = root.join("vars.fd");
    std::fs::write(&vars, (0..128 << 10).map(|_| rand::random::<u8>()).collect::<Vec<u8>>()).unwrap();
    let os = format!(
        "<loader readonly='yes' type='pflash'>/usr/share/seabios/bios-256k.bin</loader><nvram>{}</nvram>",
        vars.display()
    );
    let vm = define_with_os("hfvn", &disk, &os);
    let backups_dir = root.join("backups");
    let app = qemu_app(backend, Options { env: backups_env(&backups_dir), ..Options::default() }).await;
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;

    let b = backup(&app, &vm.name).await;
    let files = b["manifest"]["files"].as_array().unwrap();
    let nvram = files.iter().find(|f| f["path"] == "nvram.fd").unwrap_or_else(|| panic!("no nvram.fd: {b:#}"));
    assert_eq!(nvram["sha256"].as_str().unwrap(), sha256_file(&vars), "an exact copy");
    let dir = PathBuf::from(b["dir"].as_str().unwrap());
    let before = sha256_file(&dir.join("nvram.fd"));
    let result = boot_verify(&app, b["id"].as_str().unwrap(), 60).await;
    assert_eq!(result["result"], "ok", "{result:#}");
    assert!(result["boot"]["console_tail"].as_str().unwrap().contains(&nonce), "{result:#}");
    assert_eq!(sha256_file(&dir.join("nvram.fd")), before, "the backup's nvram.fd is never written");
    assert!(leftovers(&backups_dir).is_empty());

    app.stop().await;
    // A domain with nvram is undefined only when told what to do with it (QemuVm's drop is not).
    run("virsh", &["-c", URI, "undefine", "--keep-nvram", &vm.name]);
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

/// A planned verification at level `boot` (a schedule without a backup)
/// boot-tests only the newest backup of each VM; the older ones it checks at
/// level `image`. (`reverify_after_days = 0`: every backup is due.)
async fn a_planned_boot_verification_boots_only_the_newest_backup(backend: Backend) {
    if !available() {
        return;
    }
    let root = scratch();
    let (disk, nonce) = make_disk(&root);
    let vm = define_with_disk("hfvp", &disk);
    let backups_dir = root.join("backups");
    let mut env = backups_env(&backups_dir);
    env.push(("HYPERFLEET__BACKUPS__REVERIFY_AFTER_DAYS".to_owned(), "0".to_owned()));
    let app = qemu_app(backend, Options { env, ..Options::default() }).await;
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;
    let older = backup(&app, &vm.name).await["id"].as_str().unwrap().to_owned();
    let newer = backup(&app, &vm.name).await["id"].as_str().unwrap().to_owned();

    let params = json!({"level": "boot", "boot_marker": MARKER, "boot_timeout_s": 60});
    let s = json!({"name": "verify-boot", "cron": "0 0 1 1 *", "kind": "backup.verify", "params": params});
    let s = app.post("/api/v1/schedules", s).await;
    assert_eq!(s.status, 201, "{}", s.body);
    let r = app.post(&format!("/api/v1/schedules/{}/trigger", s.body["id"].as_str().unwrap()), json!({})).await;
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!((op["result"]["planned"].as_u64(), op["result"]["ok"].as_array().map(Vec::len)), (Some(2), Some(2)));
    let last = |id: String| {
        let app = &app;
        async move { app.get(&format!("/api/v1/backups/{id}")).await.body["verifications"][0].clone() }
    };
    let (old_v, new_v) = (last(older).await, last(newer).await);
    assert_eq!((old_v["level"].as_str(), old_v["result"].as_str()), (Some("image"), Some("ok")), "{old_v:#}");
    assert_eq!((new_v["level"].as_str(), new_v["result"].as_str()), (Some("boot"), Some("ok")), "{new_v:#}");
    assert!(new_v["details"]["boot"]["console_tail"].as_str().unwrap().contains(&nonce), "{new_v:#}");

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

crate::on_both_backends_with_qemu!(
    a_planned_boot_verification_boots_only_the_newest_backup,
    the_nvram_is_backed_up_and_booted_from_a_copy,
    boot_verification_boots_what_was_backed_up,
    a_killed_boot_test_leaves_nothing_and_its_retry_succeeds,
);
