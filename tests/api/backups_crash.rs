//! A backup interrupted while it is written (`#[ignore]`d real-QEMU lane):
//! a worker SIGKILLed mid-copy leaves a partial directory that the retry
//! removes before it writes the backup again, and a cancel stops the copy
//! itself. The test freezes the copying `qemu-img` (SIGSTOP, a slow disk) so
//! that the SIGKILL and the cancel (which reaches a job within a second)
//! surely find the backup being copied.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde_json::json;

use crate::{
    backups_qemu::{check_files, define_with_disk, make_disk},
    helpers::{Backend, Options, TestApp},
    qemu::{available, qemu_app},
};

/// The boot-sector disk grown to `mib` MiB of random data (incompressible: a long copy).
fn big_disk(root: &Path, mib: usize) -> PathBuf {
    let (disk, _) = make_disk(root);
    let chunk: Vec<u8> = (0..1 << 20).map(|_| rand::random::<u8>()).collect();
    let mut f = std::fs::OpenOptions::new().append(true).open(&disk).unwrap();
    for i in 1..mib {
        let mut c = chunk.clone();
        c[..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&c).unwrap();
    }
    disk
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The `qemu-img convert` writing into `partial` (the worker's child), if it runs.
fn qemu_img_writing(partial: &Path) -> Option<u32> {
    let wanted = partial.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let ours = args.first()?.ends_with("qemu-img")
            && args.iter().any(|a| a == "convert")
            && args.iter().any(|a| a.starts_with(&wanted));
        ours.then_some(pid)
    })
}

/// Waits for the `qemu-img convert` writing into `partial`.
async fn copying(app: &TestApp, partial: &Path) -> u32 {
    let mut copier = None;
    app.wait_for(|| {
        copier = qemu_img_writing(partial);
        std::future::ready(copier.is_some())
    })
    .await;
    copier.unwrap()
}

fn signal(which: &str, pid: u32) {
    assert!(std::process::Command::new("kill").args([which, &pid.to_string()]).status().unwrap().success());
}

async fn start_backup(app: &TestApp, vm: &str) -> String {
    let r = app.post(&format!("/api/v1/vms/{vm}/backups"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn interrupted_backups_leave_no_partial_directory(backend: Backend) {
    if !available() {
        return;
    }
    let root = std::env::temp_dir().join(format!("hf-bcrash-{}", ulid::Ulid::new().to_string().to_lowercase()));
    std::fs::create_dir(&root).unwrap();
    let vm = define_with_disk("hfbc", &big_disk(&root, 64));
    let backups_dir = root.join("backups");
    let env = vec![("HYPERFLEET__BACKUPS__DIR".to_owned(), backups_dir.display().to_string())];
    let mut app = qemu_app(backend, Options { env, worker: false, lease_s: 3, ..Options::default() }).await;
    let worker = app.spawn_worker_process();
    app.wait_for(|| async { app.get(&format!("/api/v1/vms/{}", vm.name)).await.status == 200 }).await;
    let vm_dir = backups_dir.join(&vm.name);

    // SIGKILL while the copy is being written: the partial directory stays behind…
    let id = start_backup(&app, &vm.name).await;
    let partial = vm_dir.join(format!("{id}.partial"));
    let copier = copying(&app, &partial).await;
    signal("-STOP", copier); // still copying when the worker dies
    app.kill_worker(worker);
    signal("-KILL", copier); // the dead worker's orphan
    assert!(partial.exists() && !vm_dir.join(&id).exists(), "killed mid-create: {:?}", entries(&vm_dir));
    // …until the retry, which removes it and writes the backup afresh.
    app.spawn_worker_process();
    let op = app.wait_status(&id, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!((op["status"].as_str(), op["attempt_count"].as_u64()), (Some("succeeded"), Some(2)), "{op:#}");
    assert_eq!(op["attempts"][0]["outcome"], "abandoned", "{op:#}");
    assert_eq!(entries(&vm_dir), [id.as_str()], "no partial directory remains");
    let b = app.get(&format!("/api/v1/backups/{id}")).await.body;
    assert_eq!((b["state"].as_str(), b["verification"].as_str()), (Some("complete"), Some("ok")), "{b:#}");
    check_files(&b);

    // A cancel while the disk is copied stops the copy; nothing of the backup remains.
    let id2 = start_backup(&app, &vm.name).await;
    let partial = vm_dir.join(format!("{id2}.partial"));
    signal("-STOP", copying(&app, &partial).await);
    let r = app.post(&format!("/api/v1/operations/{id2}/cancel"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let op = app.wait_status(&id2, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(op["status"], "cancelled", "{op:#}");
    assert_eq!(entries(&vm_dir), [id.as_str()], "the cancelled backup left nothing");
    let b2 = app.get(&format!("/api/v1/backups/{id2}")).await.body;
    assert_eq!(b2["state"], "failed", "{b2:#}");
    assert!(b2["error"].as_str().unwrap().contains("cancel"), "{b2:#}");

    app.stop().await;
    drop(vm);
    let _ = std::fs::remove_dir_all(&root);
}

crate::on_both_backends_with_qemu!(interrupted_backups_leave_no_partial_directory);
