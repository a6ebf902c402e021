//! Small exposures closed: private database files, a readiness probe that
//! keeps the database's words to the log, an access log, hosts' libvirt URIs
//! hidden from viewers, and ISO hashing that neither stops heartbeats nor
//! leaves `iso_dir`.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::{
    cli::Up,
    helpers::{Backend, Options, TestApp},
};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_directory_and_files_are_private() {
    let scratch = tempfile::tempdir().unwrap();
    let data_dir = scratch.path().join("fresh").join("data");
    let options = Options { data_dir: Some(data_dir.clone()), ..Options::default() };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;
    assert_eq!(app.post("/api/v1/diagnostics/noop", json!({})).await.status, 202);
    assert_eq!(mode(&data_dir), 0o700, "{}", data_dir.display());
    assert_eq!(mode(&scratch.path().join("fresh")), 0o700);
    for file in ["hyperfleet.db", "hyperfleet.db-wal", "hyperfleet.db-shm"] {
        let path = data_dir.join(file);
        if file == "hyperfleet.db" || path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_gives_a_code_and_keeps_the_database_error_to_the_log() {
    use sqlx::Connection;
    let app = TestApp::spawn_with(Backend::Sqlite, Options { worker: false, ..Options::default() }).await;
    let mut db = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("ALTER TABLE hyperfleet_migrations RENAME TO hidden").execute(&mut db).await.unwrap();
    let r = app.request_as(None, "GET", "/readyz", None, &[]).await;
    assert_eq!((r.status, r.body["code"].as_str()), (503, Some("not_ready")), "{}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(!message.contains("hyperfleet_migrations") && !message.contains("no such table"), "{message}");
    sqlx::query("ALTER TABLE hidden RENAME TO hyperfleet_migrations").execute(&mut db).await.unwrap();
    assert_eq!(app.request_as(None, "GET", "/readyz", None, &[]).await.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_one_access_log_line() {
    let up = Up::start(&[("HYPERFLEET__LOG__FORMAT", "json")]);
    let client = reqwest::Client::new();
    let vms = client.get(format!("{}/api/v1/vms", up.address)).bearer_auth(&up.token).send().await.unwrap();
    assert_eq!(vms.status(), 200);
    let request_id = vms.headers()["x-request-id"].to_str().unwrap().to_owned();
    let refused = client.get(format!("{}/api/v1/operations", up.address)).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let refused_id = refused.headers()["x-request-id"].to_str().unwrap().to_owned();
    let log = up.wait_for_log(&refused_id);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "hyperfleet::access")
        .collect();
    let line = |id: &str| {
        let found: Vec<_> = lines.iter().filter(|l| l["fields"]["request_id"] == id).collect();
        assert_eq!(found.len(), 1, "one line per request: {log}");
        found[0]["fields"].clone()
    };
    let ok = line(&request_id);
    assert_eq!((ok["token"].as_str(), ok["method"].as_str()), (Some("admin"), Some("GET")), "{ok}");
    assert_eq!((ok["path"].as_str(), ok["status"].as_u64()), (Some("/api/v1/vms"), Some(200)), "{ok}");
    assert!(ok["duration_ms"].as_f64().is_some(), "{ok}");
    let refused = line(&refused_id);
    assert_eq!((refused["token"].as_str(), refused["status"].as_u64()), (Some("-"), Some(401)), "{refused}");
    assert!(!log.contains(&up.token), "the log holds no secret");
}

async fn viewers_do_not_see_libvirt_uris(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut seen = Vec::new();
    for role in ["viewer", "operator", "admin"] {
        let r = app.post("/api/v1/tokens", json!({"name": format!("hosts-{role}"), "role": role})).await;
        let secret = r.body["secret"].as_str().unwrap().to_owned();
        let list = app.request_as(Some(&secret), "GET", "/api/v1/hosts", None, &[]).await;
        let one = app.request_as(Some(&secret), "GET", "/api/v1/hosts/hv1", None, &[]).await;
        assert_eq!((list.status, one.status), (200, 200));
        seen.push((role, list.body["items"][0].get("libvirt_uri").is_some(), one.body.get("libvirt_uri").is_some()));
    }
    assert_eq!(seen, [("viewer", false, false), ("operator", true, true), ("admin", true, true)]);
    app.stop().await;
}

crate::on_both_backends!(viewers_do_not_see_libvirt_uris);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_go_on_while_a_large_iso_is_hashed() {
    let isos = tempfile::tempdir().unwrap();
    // A terabyte of holes: hashing it takes far longer than this test.
    std::fs::File::create(isos.path().join("huge.iso")).unwrap().set_len(1 << 40).unwrap();
    std::fs::write(isos.path().join("huge.iso.sha256"), "0".repeat(64)).unwrap();
    let env = vec![("HYPERFLEET__WORKER__ISO_DIR".to_owned(), isos.path().display().to_string())];
    let app = TestApp::spawn_with(Backend::Sqlite, Options { env, ..Options::default() }).await;
    let mut beats = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while beats.len() < 4 {
        let host = app.get("/api/v1/hosts/hv1").await.body;
        beats.insert(host["last_heartbeat"].as_str().unwrap().to_owned());
        assert!(std::time::Instant::now() < deadline, "heartbeats stopped: {beats:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
}
