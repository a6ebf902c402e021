//! Real backups of real QEMU domains (`#[ignore]`d lane, see `qemu.rs`): an
//! offline copy of a shut-off VM and a live push backup of a running one,
//! each checked byte for byte by the test; a flipped byte, a corrupt qcow2
//! header and the alert they raise and resolve.

use std::{path::Path, process::Command};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::{
    helpers::{Backend, Options, TestApp},
    qemu::{QemuVm, URI, available, qemu_app},
};

pub(crate) fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

pub(crate) fn run(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A 1 MiB raw disk: the boot sector (`hyperfleet::boot_sector`), a random nonce in sector 2, random bytes after.
/// Returns it and the nonce, which the guest prints when it boots from it.
pub(crate) fn make_disk(root: &Path) -> (std::path::PathBuf, String) {
    let mut bytes: Vec<u8> = (0..1 << 20).map(|_| rand::random::<u8>()).collect();
    let nonce = format!("nonce-{}", ulid::Ulid::new().to_string().to_lowercase());
    bytes[..1024].copy_from_slice(&hyperfleet::boot_sector::first_sectors(&nonce));
    let disk = root.join("disk.raw");
    std::fs::write(&disk, bytes).unwrap();
    (disk, nonce)
}

/// A TCG domain (the test suite's fixture, marked as a test domain) with
/// `disk` as `vda`, an empty CD-ROM, and its serial console written to `<disk>.console`.
pub(crate) fn define_with_disk(prefix: &str, disk: &Path) -> QemuVm {
    define_with_os(prefix, disk, "")
}

/// Like [`define_with_disk`], with more `<os>` settings (such as a boot menu that delays booting).
pub(crate) fn define_with_os(prefix: &str, disk: &Path, os: &str) -> QemuVm {
    let name = format!("{prefix}-{}", ulid::Ulid::new().to_string()[20..].to_lowercase());
    let devices = format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/>\
         <target dev='vda' bus='virtio'/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>\
         <serial type='file'><source path='{}'/><target port='0'/></serial>",
        disk.display(),
        disk.with_extension("console").display()
    );
    let fixture = include_str!("../fixtures/qemu-domain.xml");
    let (start, end) = (fixture.find("<serial").unwrap(), fixture.find("<memballoon").unwrap());
    let xml = format!("{}{devices}\n    {}", &fixture[..start], &fixture[end..])
        .replace("@NAME@", &name)
        .replace("<boot dev='hd'/>", &format!("<boot dev='hd'/>{os}"));
    let file = disk.with_extension("xml");
    std::fs::write(&file, xml).unwrap();
    run("virsh", &["-c", URI, "define", file.to_str().unwrap()]);
    QemuVm { name }
}

pub(crate) async fn backup(app: &TestApp, vm: &str) -> Value {
    let r = app.post(&format!("/api/v1/vms/{vm}/backups"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let b = app.get(&format!("/api/v1/backups/{}", op["result"]["backup_id"].as_str().unwrap())).await;
    assert_eq!(b.status, 200, "{}", b.body);
    b.body
}

pub(crate) async fn verify(app: &TestApp, id: &str, level: &str) -> Value {
    let r = app.post(&format!("/api/v1/backups/{id}/verify"), json!({ "level": level })).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(op["status"], "succeeded", "a bad backup is a verification that ran: {op:#}");
    op["result"].clone()
}

/// The test recomputes every file's sha256 and finds exactly the manifest's files.
pub(crate) fn check_files(b: &Value) {
    let dir = Path::new(b["dir"].as_str().unwrap());
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(sha256_file(&dir.join("manifest.json")), b["manifest_sha256"].as_str().unwrap());
    let files = manifest["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["disks/vda.qcow2", "domain.xml"]);
    for f in files {
        let path = dir.join(f["path"].as_str().unwrap());
        assert_eq!(sha256_file(&path), f["sha256"].as_str().unwrap(), "{path:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), f["size"].as_u64().unwrap());
    }
    let xml = std::fs::read_to_string(dir.join("domain.xml")).unwrap();
    assert!(xml.contains("<domain") && xml.contains(b["vm"].as_str().unwrap()), "{xml}");
    assert!(!dir.with_extension("partial").exists() && !Path::new(&format!("{}.partial", dir.display())).exists());
}

/// Rewrites the backup's manifest after its files changed and records the new hash in the ledger,
/// as someone covering their tracks would: only the image level can tell.
pub(crate) async fn rehash(app: &TestApp, backend: Backend, b: &Value) {
    let dir = Path::new(b["dir"].as_str().unwrap());
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        let path = dir.join(f["path"].as_str().unwrap());
        f["sha256"] = json!(sha256_file(&path));
    }
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(dir.join("manifest.json"), &bytes).unwrap();
    let sha = hyperfleet_core::backup::sha256_hex(&bytes);
    let id = b["id"].as_str().unwrap();
    let sql = "UPDATE backups SET manifest_sha256 = $1 WHERE id = $2";
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).bind(sha).bind(id.to_owned()).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).bind(sha).bind(uuid::Uuid::parse_str(id).unwrap()).execute(&mut c).await.unwrap();
        }
    }
}

pub(crate) async fn backup_alerts(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/alerts?source=backup").await.body["items"].as_array().unwrap().clone()
}

async fn real_backups_are_exact_copies_and_verification_finds_damage(backend: Backend) {
    if !available() {
        return;
    }
    // Not a TempDir: libvirt's QEMU user must reach the disk and the backup targets.
    let root = std::env::temp_dir().join(format!("hf-backups-{}", ulid::Ulid::new().to_string().to_lowercase()));
    std::fs::create_dir(&root).unwrap();
    let (disk, nonce) = make_disk(&root);
    let vm = define_with_disk("hfb", &disk);
    let backups_dir = root.join("backups");
    let env = vec![("HYPERFLEET__BACKUPS__DIR".to_owned(), backups_dir.display().to_string())];
    let app = qemu_app(backend, Options { env, ..Options::default() }).await;
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;
    let disk_s = disk.to_str().unwrap();

    // Shut off: an offline copy, verified at once, identical to the source.
    let offline = backup(&app, &vm.name).await;
    assert_eq!((offline["state"].as_str(), offline["method"].as_str()), (Some("complete"), Some("offline")));
    assert_eq!(offline["verification"], "ok");
    assert_eq!(offline["verifications"][0]["level"], "checksum");
    assert_eq!(offline["manifest"]["disks"][0]["virtual_size"], 1 << 20);
    assert_eq!(offline["manifest"]["skipped"], json!(["hdc (cdrom)"]), "the empty CD-ROM is not backed up");
    check_files(&offline);
    let copy = format!("{}/disks/vda.qcow2", offline["dir"].as_str().unwrap());
    run("qemu-img", &["compare", "-f", "raw", "-F", "qcow2", disk_s, &copy]);

    // Running (it booted from the disk: its console shows the nonce): libvirt's
    // push backup, identical too (the guest halts after printing; it writes nothing).
    let r = app.post(&format!("/api/v1/vms/{}/start", vm.name), json!({})).await;
    app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded"]).await;
    let console = disk.with_extension("console");
    let marker = format!("HYPERFLEET-BOOT-OK {nonce}");
    app.wait_for(|| async { std::fs::read_to_string(&console).is_ok_and(|t| t.contains(&marker)) }).await;
    let live = backup(&app, &vm.name).await;
    assert_eq!((live["state"].as_str(), live["method"].as_str()), (Some("complete"), Some("live")));
    assert_eq!(live["manifest"]["consistency"], "crash-consistent");
    assert_eq!(live["manifest"]["skipped"], json!(["hdc (cdrom)"]));
    check_files(&live);
    let live_copy = format!("{}/disks/vda.qcow2", live["dir"].as_str().unwrap());
    run("qemu-img", &["compare", "-U", "-f", "raw", "-F", "qcow2", disk_s, &live_copy]);
    assert!(backup_alerts(&app).await.is_empty());

    // One flipped byte in the older backup: the checksum level names the file, a critical alert fires.
    let mut bytes = std::fs::read(&copy).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    std::fs::write(&copy, bytes).unwrap();
    let id = offline["id"].as_str().unwrap();
    let result = verify(&app, id, "checksum").await;
    assert_eq!((result["result"].as_str(), result["code"].as_str()), (Some("failed"), Some("checksum_mismatch")));
    assert_eq!(result["findings"][0]["file"], "disks/vda.qcow2");
    let shown = app.get(&format!("/api/v1/backups/{id}")).await.body;
    assert_eq!(shown["verification"], "failed");
    assert_eq!(shown["verifications"][0]["code"], "checksum_mismatch");
    let alerts = backup_alerts(&app).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!((alerts[0]["severity"].as_str(), alerts[0]["status"].as_str()), (Some("critical"), Some("firing")));
    assert_eq!(alerts[0]["labels"]["vm"], vm.name.as_str());

    // The VM's newest backup verifies ok (image level): that resolves the alert.
    let result = verify(&app, live["id"].as_str().unwrap(), "image").await;
    assert_eq!(result["result"], "ok", "{result:#}");
    let alerts = backup_alerts(&app).await;
    assert_eq!(alerts[0]["status"], "resolved", "{alerts:#?}");

    // A corrupt qcow2 header with the manifest re-hashed to match: only the image level can tell.
    let mut bytes = std::fs::read(&live_copy).unwrap();
    bytes[..4].copy_from_slice(b"XXXX");
    std::fs::write(&live_copy, bytes).unwrap();
    rehash(&app, backend, &live).await;
    let result = verify(&app, live["id"].as_str().unwrap(), "checksum").await;
    assert_eq!(result["result"], "ok", "the checksums match again: {result:#}");
    let result = verify(&app, live["id"].as_str().unwrap(), "image").await;
    assert_eq!((result["result"].as_str(), result["code"].as_str()), (Some("failed"), Some("image_corrupt")));
    assert_eq!(result["findings"][0]["file"], "disks/vda.qcow2");

    // A manifest edited without the ledger knowing is caught before any file is trusted.
    let manifest = Path::new(live["dir"].as_str().unwrap()).join("manifest.json");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push(' ');
    std::fs::write(&manifest, text).unwrap();
    let result = verify(&app, live["id"].as_str().unwrap(), "checksum").await;
    assert_eq!((result["result"].as_str(), result["code"].as_str()), (Some("failed"), Some("manifest_tampered")));

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

/// A disk that is not there: retrying cannot help, so the first attempt fails
/// for good (`disk_missing`), removes what it wrote, and the backup is
/// recorded as failed with the operation.
async fn a_backup_that_cannot_be_written_fails_and_leaves_nothing(backend: Backend) {
    if !available() {
        return;
    }
    let root = std::env::temp_dir().join(format!("hf-backups-{}", ulid::Ulid::new().to_string().to_lowercase()));
    std::fs::create_dir(&root).unwrap();
    let vm = define_with_disk("hfbx", &root.join("missing.raw"));
    let backups_dir = root.join("backups");
    let env = vec![("HYPERFLEET__BACKUPS__DIR".to_owned(), backups_dir.display().to_string())];
    let app = qemu_app(backend, Options { env, max_attempts: 2, ..Options::default() }).await;
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;

    let r = app.post(&format!("/api/v1/vms/{}/backups", vm.name), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let op = app.wait_status(&id, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!((op["status"].as_str(), op["error_code"].as_str()), (Some("failed"), Some("disk_missing")), "{op:#}");
    assert_eq!(op["attempt_count"], 1, "not retried: {op:#}");
    let b = app.get(&format!("/api/v1/backups/{id}")).await.body;
    assert_eq!(b["state"], "failed", "{b:#}");
    assert!(b["error"].as_str().unwrap().contains("disk_missing"), "{b:#}");
    let vm_dir = backups_dir.join(&vm.name);
    let left: Vec<_> = std::fs::read_dir(&vm_dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing half-written remains: {left:?}");
    let listed = app.get(&format!("/api/v1/backups?vm={}&state=failed", vm.name)).await.body;
    assert_eq!(listed["items"][0]["id"], id.as_str());

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

/// What an earlier attempt left in `<id>.partial/` (its worker died) is removed
/// before the backup is written: the backup holds exactly its manifest's files.
async fn leftovers_of_an_earlier_attempt_are_removed_first(backend: Backend) {
    if !available() {
        return;
    }
    let root = std::env::temp_dir().join(format!("hf-backups-{}", ulid::Ulid::new().to_string().to_lowercase()));
    std::fs::create_dir(&root).unwrap();
    let vm = define_with_disk("hfbl", &make_disk(&root).0);
    let backups_dir = root.join("backups");
    let env = vec![("HYPERFLEET__BACKUPS__DIR".to_owned(), backups_dir.display().to_string())];
    let mut app = qemu_app(backend, Options { env, worker: false, ..Options::default() }).await;
    let worker = app.spawn_worker_process();
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;
    app.kill_worker(worker);

    let r = app.post(&format!("/api/v1/vms/{}/backups", vm.name), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let partial = backups_dir.join(&vm.name).join(format!("{id}.partial"));
    std::fs::create_dir_all(partial.join("disks")).unwrap();
    std::fs::write(partial.join("disks/vda.qcow2"), b"half of an image").unwrap();
    std::fs::write(partial.join("stray"), b"x").unwrap();

    app.spawn_worker_process();
    let op = app.wait_status(&id, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let b = app.get(&format!("/api/v1/backups/{id}")).await.body;
    assert_eq!((b["state"].as_str(), b["verification"].as_str()), (Some("complete"), Some("ok")), "{b:#}");
    check_files(&b);
    assert!(!partial.exists());
    let on_disk: Vec<String> = std::fs::read_dir(b["dir"].as_str().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!on_disk.contains(&"stray".to_owned()), "{on_disk:?}");
    assert!(b["verifications"][0]["details"]["warnings"].as_array().unwrap().is_empty(), "{b:#}");

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

/// The backup directory fills up (a 256 KiB filesystem the test mounts): the
/// backup fails at once with `no_space` (retrying cannot help), its partial
/// directory is removed and the failure raises an alert.
async fn a_full_backup_disk_fails_at_once_with_no_space(backend: Backend) {
    if !available() {
        return;
    }
    let Some(small) = crate::disk_full::SmallDisk::mount("256k") else {
        eprintln!("NO-SPACE BACKUP TEST SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    // The mount point is a TempDir (0700): fine, an offline copy is written by the worker alone.
    let root = std::env::temp_dir().join(format!("hf-backups-{}", ulid::Ulid::new().to_string().to_lowercase()));
    std::fs::create_dir(&root).unwrap();
    let vm = define_with_disk("hfbf", &make_disk(&root).0);
    let env = vec![("HYPERFLEET__BACKUPS__DIR".to_owned(), small.path().display().to_string())];
    let app = qemu_app(backend, Options { env, ..Options::default() }).await;
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;

    let r = app.post(&format!("/api/v1/vms/{}/backups", vm.name), json!({})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let op = app.wait_status(&id, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!((op["status"].as_str(), op["error_code"].as_str()), (Some("failed"), Some("no_space")), "{op:#}");
    assert_eq!((op["error_class"].as_str(), op["attempt_count"].as_u64()), (Some("permanent"), Some(1)));
    let b = app.get(&format!("/api/v1/backups/{id}")).await.body;
    assert_eq!(b["state"], "failed", "{b:#}");
    let left: Vec<_> = std::fs::read_dir(small.path().join(&vm.name)).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the partial backup is removed: {left:?}");
    app.wait_for(|| async {
        let alerts = app.get("/api/v1/alerts?source=operation").await.body;
        alerts["items"].as_array().unwrap().iter().any(|a| a["operation_id"] == id.as_str())
    })
    .await;

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

crate::on_both_backends_with_qemu!(
    a_full_backup_disk_fails_at_once_with_no_space,
    leftovers_of_an_earlier_attempt_are_removed_first,
    real_backups_are_exact_copies_and_verification_finds_damage,
    a_backup_that_cannot_be_written_fails_and_leaves_nothing,
);
