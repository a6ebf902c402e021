//! Backups through the API, over backups recorded in the ledger (real
//! backups of real QEMU domains are in `backups_qemu.rs`).

use hyperfleet_core::{
    backup::{VerifyLevel, VerifyReport, VerifyResult},
    store::{BackupRecord, NewVerification},
};
use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

/// Records a complete backup of `vm` without files (for the API's own tests); returns its id.
pub async fn recorded_backup(app: &TestApp, host: &str, vm: &str) -> String {
    recorded_backup_in(app, host, vm, "/nowhere").await
}

/// [`recorded_backup`] with its directory at `dir`.
async fn recorded_backup_in(app: &TestApp, host: &str, vm: &str, dir: &str) -> String {
    use hyperfleet_core::backup::{BackupMethod, Manifest, Versions, sha256_hex};
    let core = app.core().await;
    let id = hyperfleet_core::BackupId::new();
    let op = hyperfleet_core::OperationId(id.0);
    core.backup_started(id, op, host, vm, dir).await.unwrap();
    let manifest = Manifest {
        format: Manifest::FORMAT,
        backup_id: id,
        host: host.into(),
        vm: vm.into(),
        method: BackupMethod::Offline,
        consistency: "consistent".into(),
        created_at: hyperfleet_core::Timestamp::now(),
        versions: Versions { hyperfleet: "0".into(), libvirt: "0".into(), qemu: "0".into() },
        disks: vec![],
        skipped: vec![],
        files: vec![],
    };
    core.backup_completed(id, &manifest, &sha256_hex(&manifest.to_bytes())).await.unwrap();
    id.to_string()
}

/// Records an ok checksum verification of `backup`, as the verify job would; returns its operation.
pub(crate) async fn record_ok_verification(
    core: &hyperfleet_core::app::App,
    backup: &BackupRecord,
) -> hyperfleet_core::OperationId {
    let report = VerifyReport {
        level: VerifyLevel::Checksum,
        result: VerifyResult::Ok,
        findings: vec![],
        warnings: vec![],
        files_checked: 0,
        bytes_checked: 0,
        boot: None,
    };
    let operation = hyperfleet_core::OperationId::new();
    let v = NewVerification { backup: backup.id, operation, started_at: core.now(), report: &report };
    core.record_verification(backup, v).await.unwrap();
    operation
}

async fn backups_are_listed_filtered_and_shown_with_their_manifest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let older = recorded_backup(&app, "hv1", "web").await;
    let newer = recorded_backup(&app, "hv1", "test").await;
    let all = app.get("/api/v1/backups?limit=1").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["items"][0]["id"], newer.as_str(), "newest first");
    assert_eq!(all.body["items"][0]["verification"], "none");
    let cursor = all.body["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("/api/v1/backups?limit=1&cursor={cursor}")).await;
    assert_eq!(rest.body["items"][0]["id"], older.as_str());
    assert!(rest.body.get("next_cursor").is_none(), "{}", rest.body);
    let web = app.get("/api/v1/backups?vm=web&state=complete").await;
    assert_eq!(web.body["items"].as_array().unwrap().len(), 1);
    assert!(app.get("/api/v1/backups?state=creating").await.body["items"].as_array().unwrap().is_empty());

    // A verification is recorded with its derived state; the list filters on it.
    let core = app.core().await;
    let (view, _) = core.backup(hyperfleet_core::BackupId::parse(&older).unwrap()).await.unwrap();
    let operation = record_ok_verification(&core, &view.record).await;
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&app.get("/api/v1/backups?verification=ok").await.body), [older.as_str()]);
    assert_eq!(ids(&app.get("/api/v1/backups?verification=none").await.body), [newer.as_str()]);
    assert!(ids(&app.get("/api/v1/backups?verification=outdated").await.body).is_empty());
    assert!(ids(&app.get("/api/v1/backups?verification=failed").await.body).is_empty());
    assert_eq!(app.get("/api/v1/backups?verification=fine").await.status, 400);

    let one = app.get(&format!("/api/v1/backups/{older}")).await;
    assert_eq!((one.body["state"].as_str(), one.body["method"].as_str()), (Some("complete"), Some("offline")));
    assert_eq!(one.body["manifest"]["vm"], "web");
    assert_eq!(one.body["verification"], "ok");
    assert_eq!(one.body["verifications"][0]["level"], "checksum");
    assert_eq!(one.body["verifications"][0]["operation_id"], operation.to_string().as_str());
    let missing = app.get(&format!("/api/v1/backups/{}", uuid::Uuid::now_v7())).await;
    assert_eq!((missing.status, missing.body["code"].as_str()), (404, Some("backup_not_found")));

    // Verifying is an operation on the backup's host and VM; levels are a closed set.
    let r = app.post(&format!("/api/v1/backups/{older}/verify"), json!({"level": "image"})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.headers["location"], format!("/api/v1/operations/{}", r.body["id"].as_str().unwrap()).as_str());
    assert_eq!((r.body["kind"].as_str(), r.body["vm"].as_str()), (Some("backup.verify"), Some("web")));
    assert_eq!(r.body["params"]["level"], "image");
    let r = app.post(&format!("/api/v1/backups/{older}/verify"), json!({"level": "reboot"})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // A boot test's marker and timeout are bounded and checked before anything is enqueued.
    let r = app
        .post(
            &format!("/api/v1/backups/{older}/verify"),
            json!({"level": "boot", "boot_marker": "login: [a-z]+", "boot_timeout_s": 90}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        r.body["params"],
        json!({"backup_id": older, "level": "boot", "boot_marker": "login: [a-z]+", "boot_timeout_s": 90})
    );
    let before = app.get("/api/v1/operations?kind=backup.verify").await.body["items"].as_array().unwrap().len();
    for (body, status, code) in [
        (json!({"level": "boot", "boot_marker": "(unclosed"}), 422, Some("invalid_boot_marker")),
        (json!({"level": "boot", "boot_marker": "x".repeat(257)}), 400, None),
        (json!({"level": "boot", "boot_marker": ""}), 400, None),
        (json!({"level": "boot", "boot_timeout_s": 0}), 400, None),
        (json!({"level": "boot", "boot_timeout_s": 3601}), 400, None),
    ] {
        let r = app.post(&format!("/api/v1/backups/{older}/verify"), body.clone()).await;
        assert_eq!(
            (r.status, r.body["code"].as_str().filter(|_| code.is_some())),
            (status, code),
            "{body}: {}",
            r.body
        );
    }
    let after = app.get("/api/v1/operations?kind=backup.verify").await.body["items"].as_array().unwrap().len();
    assert_eq!(before, after, "bad input enqueues nothing");

    // Only a complete backup can be verified.
    let core = app.core().await;
    let failed = hyperfleet_core::BackupId::new();
    core.backup_started(failed, hyperfleet_core::OperationId(failed.0), "hv1", "web", "/nowhere").await.unwrap();
    core.backup_failed(failed, "no_space: the disk is full").await.unwrap();
    let r = app.post(&format!("/api/v1/backups/{failed}/verify"), json!({})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("backup_not_complete")), "{}", r.body);
    let shown = app.get(&format!("/api/v1/backups/{failed}")).await.body;
    assert_eq!(
        (shown["state"].as_str(), shown["error"].as_str()),
        (Some("failed"), Some("no_space: the disk is full"))
    );

    // Backups can be scheduled through the schedules API; their parameters are checked when asked.
    // A backup schedule fires on the VM's host, in the VM's turn.
    let s = json!({"name": "nightly", "cron": "0 3 * * *", "kind": "backup.create", "params": {"vm": "web"}});
    let created = app.post("/api/v1/schedules", s).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let trigger = format!("/api/v1/schedules/{}/trigger", created.body["id"].as_str().unwrap());
    app.wait_for(|| async { app.get("/api/v1/vms/web").await.status == 200 }).await;
    let fired = app.post(&trigger, json!({})).await;
    assert!((200..300).contains(&fired.status), "{}", fired.body);
    assert_eq!((fired.body["kind"].as_str(), fired.body["host"].as_str()), (Some("backup.create"), Some("hv1")));
    assert_eq!(fired.body["vm"], "web");
    let s = json!({"name": "bad", "cron": "0 3 * * *", "kind": "backup.create", "params": {"vm": "../x"}});
    assert_eq!(app.post("/api/v1/schedules", s).await.body["code"], "invalid_vm_name");
    app.stop().await;
}

/// Pruning keeps what the keep options say plus the newest verified backup,
/// removes the others' directories and marks them deleted; a dry run only says
/// so. One backup can also be deleted by hand.
async fn prune_keeps_what_the_options_say_and_the_newest_verified_backup(backend: Backend) {
    let backups_dir = tempfile::tempdir().unwrap();
    let env = vec![("HYPERFLEET__BACKUPS__DIR".to_owned(), backups_dir.path().display().to_string())];
    let app = TestApp::spawn_with(backend, Options { env, ..Options::default() }).await;
    let stale = backups_dir.path().join("web").join(format!("{}.partial", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(stale.join("disks")).unwrap();
    app.wait_for(|| async { app.get("/api/v1/vms/web").await.status == 200 }).await;
    let mut ids = Vec::new(); // oldest first
    let mut dirs = Vec::new();
    for n in 0..4 {
        let dir = app.dir.path().join(format!("backup-{n}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("manifest.json"), b"{}").unwrap();
        ids.push(recorded_backup_in(&app, "hv1", "web", dir.to_str().unwrap()).await);
        dirs.push(dir);
    }
    let core = app.core().await;
    let (oldest, _) = core.backup(hyperfleet_core::BackupId::parse(&ids[0]).unwrap()).await.unwrap();
    record_ok_verification(&core, &oldest.record).await;

    let prune = |body: serde_json::Value| {
        let app = &app;
        async move {
            let r = app.post("/api/v1/backups/prune", body).await;
            assert_eq!(r.status, 202, "{}", r.body);
            assert_eq!((r.body["kind"].as_str(), r.body["vm"].as_str()), (Some("backup.prune"), Some("web")));
            let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await;
            assert_eq!(op["status"], "succeeded", "{op:#}");
            op["result"].clone()
        }
    };
    let result = prune(json!({"vm": "web", "keep_last": 1, "dry_run": true})).await;
    assert_eq!(result["delete"], json!([ids[2], ids[1]]), "{result:#}");
    assert_eq!(
        result["keep"],
        json!([{"backup_id": ids[3], "reason": "last"}, {"backup_id": ids[0], "reason": "newest_verified"}])
    );
    assert!(dirs.iter().all(|d| d.exists()) && stale.exists(), "a dry run deletes nothing");
    let complete = app.get("/api/v1/backups?vm=web&state=complete").await.body;
    assert_eq!(complete["items"].as_array().unwrap().len(), 4);

    let result = prune(json!({"vm": "web", "keep_last": 1})).await;
    assert_eq!(result["deleted"], json!([ids[2], ids[1]]), "{result:#}");
    assert!(dirs[3].exists() && dirs[0].exists() && !dirs[2].exists() && !dirs[1].exists());
    assert!(!stale.exists(), "a partial backup left by a dead worker is removed");
    assert_eq!(result["partials_removed"], json!([stale.file_name().unwrap().to_str().unwrap()]));
    let deleted = app.get("/api/v1/backups?vm=web&state=deleted").await.body;
    let deleted: Vec<&str> = deleted["items"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(deleted, [ids[2].as_str(), ids[1].as_str()]);

    // One backup deleted by hand (admin): its directory goes, its record stays as `deleted`.
    let r = app.request("DELETE", &format!("/api/v1/backups/{}", ids[3]), None, &[]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["kind"], "backup.delete");
    let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert!(!dirs[3].exists());
    assert_eq!(app.get(&format!("/api/v1/backups/{}", ids[3])).await.body["state"], "deleted");
    let r = app.request("DELETE", &format!("/api/v1/backups/{}", ids[3]), None, &[]).await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("backup_not_complete")), "{}", r.body);
    let s = json!({"name": "del", "cron": "0 4 * * *", "kind": "backup.delete", "params": {"backup_id": ids[0]}});
    assert_eq!(app.post("/api/v1/schedules", s).await.body["code"], "invalid_kind");

    // Without a keep option nothing is planned: refused when asked.
    let r = app.post("/api/v1/backups/prune", json!({"vm": "web"})).await;
    assert_eq!(r.body["code"], "invalid_parameters", "{}", r.body);
    let s =
        json!({"name": "prune", "cron": "0 4 * * *", "kind": "backup.prune", "params": {"vm": "web", "keep_daily": 7}});
    assert_eq!(app.post("/api/v1/schedules", s).await.status, 201);
    app.stop().await;
}

crate::on_both_backends!(
    backups_are_listed_filtered_and_shown_with_their_manifest,
    prune_keeps_what_the_options_say_and_the_newest_verified_backup,
    a_verification_without_a_backup_verifies_what_is_due_on_each_host,
);

/// A complete backup of `vm` on disk in `dir` (one file and its manifest, the hash in the ledger); returns its id.
async fn written_backup(app: &TestApp, vm: &str, dir: &std::path::Path) -> String {
    use hyperfleet_core::backup::{BackupMethod, Manifest, ManifestFile, Versions, sha256_hex};
    std::fs::create_dir_all(dir).unwrap();
    let xml = format!("<domain><name>{vm}</name></domain>");
    std::fs::write(dir.join("domain.xml"), &xml).unwrap();
    let core = app.core().await;
    let id = hyperfleet_core::BackupId::new();
    core.backup_started(id, hyperfleet_core::OperationId(id.0), "hv1", vm, dir.to_str().unwrap()).await.unwrap();
    let manifest = Manifest {
        format: Manifest::FORMAT,
        backup_id: id,
        host: "hv1".into(),
        vm: vm.into(),
        method: BackupMethod::Offline,
        consistency: "consistent".into(),
        created_at: hyperfleet_core::Timestamp::now(),
        versions: Versions { hyperfleet: "0".into(), libvirt: "0".into(), qemu: "0".into() },
        disks: vec![],
        skipped: vec![],
        files: vec![ManifestFile {
            path: "domain.xml".into(),
            size: xml.len() as u64,
            sha256: sha256_hex(xml.as_bytes()),
        }],
    };
    std::fs::write(dir.join("manifest.json"), manifest.to_bytes()).unwrap();
    core.backup_completed(id, &manifest, &sha256_hex(&manifest.to_bytes())).await.unwrap();
    id.to_string()
}

/// Without a backup, a verification plans on its host: every backup never
/// verified is verified once; the bad one fails with its code and raises the
/// alert; a second run finds nothing due.
async fn a_verification_without_a_backup_verifies_what_is_due_on_each_host(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.wait_for(|| async { app.get("/api/v1/hosts/hv1").await.status == 200 }).await;
    let good = written_backup(&app, "web", &app.dir.path().join("b/good")).await;
    let bad = written_backup(&app, "test", &app.dir.path().join("b/bad")).await;
    std::fs::write(app.dir.path().join("b/bad/domain.xml"), "<domain><name>tampered</name></domain>").unwrap();

    let s = json!({"name": "verify-all", "cron": "0 0 1 1 *", "kind": "backup.verify"});
    let s = app.post("/api/v1/schedules", s).await;
    assert_eq!(s.status, 201, "{}", s.body);
    let trigger = format!("/api/v1/schedules/{}/trigger", s.body["id"].as_str().unwrap());
    let run = || {
        let (app, trigger) = (&app, trigger.clone());
        async move {
            let r = app.post(&trigger, json!({})).await;
            assert_eq!((r.body["kind"].as_str(), r.body["host"].as_str()), (Some("backup.verify"), Some("hv1")));
            let op = app.wait_status(r.body["id"].as_str().unwrap(), &["succeeded", "failed", "cancelled"]).await;
            assert_eq!(op["status"], "succeeded", "{op:#}");
            op["result"].clone()
        }
    };
    let result = run().await;
    assert_eq!(result["planned"], 2, "{result:#}");
    assert_eq!(result["ok"], json!([good]));
    assert_eq!(result["failed"], json!([{"backup_id": bad, "vm": "test", "code": "size_mismatch"}]));
    let shown = app.get(&format!("/api/v1/backups/{good}")).await.body;
    assert_eq!(shown["verification"], "ok");
    let alerts = app.get("/api/v1/alerts?source=backup").await.body;
    let alerts = alerts["items"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["labels"]["vm"], "test");

    let again = run().await;
    assert_eq!(again["planned"], 0, "nothing is due until it is outdated: {again:#}");
    app.stop().await;
}
