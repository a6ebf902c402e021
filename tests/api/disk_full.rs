//! A full disk under the SQLite database: a 202 is only ever sent for an
//! operation that is stored. Writes are refused fast with 503 `storage_full`,
//! reads keep working, readiness says why, and once space returns writes
//! resume by themselves with nothing lost or duplicated.

use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, unlimited_rate};

/// A small tmpfs the test mounts (root only), unmounted on drop.
pub(crate) struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub(crate) fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "hf-disk-full"])
            .arg(dir.path())
            .status()
            .ok()?;
        status.success().then_some(Self { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

#[derive(Default)]
struct Tally {
    accepted: Vec<String>,
    refused_ms: Vec<u128>,
}

async fn submit(app: &TestApp, n: usize, tally: &mut Tally) {
    for _ in 0..n {
        let started = Instant::now();
        let r = app.post("/api/v1/diagnostics/noop", json!({"sleep_ms": 0})).await;
        match r.status {
            202 => tally.accepted.push(r.body["id"].as_str().unwrap().to_owned()),
            503 => {
                assert_eq!(r.body["code"], "storage_full", "{}", r.body);
                tally.refused_ms.push(started.elapsed().as_millis());
            }
            other => panic!("a submit on a full disk answered {other}: {}", r.body),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_and_recovers_by_itself() {
    // Room for the ledger, its indexes and its write-ahead log once the filler
    // is gone, plus the 1 MiB readiness asks for (4 MiB no longer was).
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("################################################################");
        eprintln!("## DISK-FULL TEST SKIPPED: cannot mount a small tmpfs (root?) ##");
        eprintln!("################################################################");
        return;
    };
    let data_dir: PathBuf = disk.path().to_owned();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options { data_dir: Some(data_dir.clone()), env: unlimited_rate(), ..Options::default() },
    )
    .await;
    let mut before = Tally::default();
    submit(&app, 20, &mut before).await;
    assert_eq!(before.accepted.len(), 20, "room to write before the disk fills");

    fill(&data_dir.join("filler"));
    let mut full = Tally::default();
    submit(&app, 300, &mut full).await;
    // Every 202 is really stored (a phantom 202 is a 404 here), and reads keep working.
    let listed = app.get("/api/v1/operations?limit=5").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    for id in before.accepted.iter().chain(&full.accepted) {
        app.operation(id).await;
    }
    assert!(!full.refused_ms.is_empty(), "the disk never filled up: {} accepted", full.accepted.len());

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.body["code"], "storage_full", "{}", ready.body);

    std::fs::remove_file(data_dir.join("filler")).unwrap();
    app.wait_for(|| async { app.get("/readyz").await.status == 200 }).await;
    let mut after = Tally::default();
    submit(&app, 20, &mut after).await;
    assert_eq!(after.accepted.len(), 20, "writes resume by themselves once there is room");

    let accepted: Vec<&String> = before.accepted.iter().chain(&full.accepted).chain(&after.accepted).collect();
    for id in &accepted {
        app.wait_status(id, &["succeeded"]).await;
    }
    let stored: Vec<String> = app
        .all_operations()
        .await
        .iter()
        .filter(|op| op["kind"] == "noop")
        .map(|op| op["id"].as_str().unwrap().to_owned())
        .collect();
    let stored_set: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), stored_set.len(), "nothing stored twice");
    assert_eq!(stored_set, accepted.iter().copied().collect(), "the ledger holds exactly what was accepted");

    let mut refused = full.refused_ms.clone();
    refused.sort_unstable();
    let p99 = refused[(refused.len() * 99 / 100).min(refused.len() - 1)];
    println!(
        "disk full: {} accepted before, {} accepted and {} refused (storage_full, p99 {p99} ms, max {} ms) \
         while full, {} accepted after; all {} succeeded; the ledger holds {}",
        before.accepted.len(),
        full.accepted.len(),
        refused.len(),
        refused.last().unwrap(),
        after.accepted.len(),
        accepted.len(),
        stored.len(),
    );
    // Not a speed target: a refusal must not wait out a pool or busy timeout.
    assert!(*refused.last().unwrap() < 5_000, "a refusal does not hang");
    app.stop().await;
    drop(disk);
}
