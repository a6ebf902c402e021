//! Hosts, system facts, ISOs, and the seed system's API.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, Options, TestApp};

async fn hosts_report_liveness_vm_counts_and_system(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/api/v1/hosts").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let host = &r.body["items"][0];
    assert_eq!(host["name"], "hv1");
    assert_eq!(host["status"], "online");
    assert_eq!(host["vm_counts"]["running"], 2);
    assert_eq!(host["vm_total"], 2);
    assert!(host["version"].as_str().unwrap().starts_with("hyperfleet "));

    app.wait_for(|| async { app.get("/api/v1/hosts/hv1/system").await.status == 200 }).await;
    let sys = app.get("/api/v1/hosts/hv1/system").await.body;
    assert!(sys["cpus"].as_u64().unwrap() >= 1, "{sys}");
    assert!(sys["memory_total_bytes"].as_u64().unwrap() >= sys["memory_used_bytes"].as_u64().unwrap());
    assert!(sys["uptime_s"].as_u64().unwrap() > 0);
    assert_eq!(sys["disks"][0]["role"], "data_dir");
    assert!(sys["disks"][0]["total_bytes"].as_u64().unwrap() > 0);
    assert!(sys["libvirt_version"].as_str().unwrap().split('.').count() == 3, "{sys}");

    let r = app.get("/api/v1/hosts/nohost").await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("host_not_found")));
    let r = app.get("/api/v1/hosts/bad%3Bhost/system").await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_parameter")));
    app.stop().await;
}

async fn isos_are_catalogued_with_their_checksums(backend: Backend) {
    let isos = tempfile::tempdir().unwrap();
    std::fs::write(isos.path().join("good.iso"), b"installer image").unwrap();
    let digest = hex::encode(Sha256::digest(b"installer image"));
    std::fs::write(isos.path().join("good.iso.sha256"), format!("{digest}  good.iso\n")).unwrap();
    std::fs::write(isos.path().join("bad.iso"), b"tampered").unwrap();
    std::fs::write(isos.path().join("bad.iso.sha256"), &digest).unwrap();
    std::fs::write(isos.path().join("plain.iso"), vec![0u8; 3 * 1024 * 1024]).unwrap();
    let env = vec![("HYPERFLEET__WORKER__ISO_DIR".to_owned(), isos.path().display().to_string())];
    let app = TestApp::spawn_with(backend, Options { env, ..Options::default() }).await;
    app.wait_for(|| async { app.get("/api/v1/isos").await.body["items"].as_array().is_some_and(|i| i.len() == 3) })
        .await;
    let items = app.get("/api/v1/isos").await.body["items"].clone();
    let status: Vec<(String, String)> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap().into(), i["checksum_status"].as_str().unwrap().into()))
        .collect();
    let expected = [("bad.iso", "mismatch"), ("good.iso", "verified"), ("plain.iso", "unverified")];
    assert_eq!(status, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(items[2]["size_bytes"], 3 * 1024 * 1024);
    assert_eq!(items[1]["sha256"], digest.as_str());

    let seed = app.get("/api/isos/list").await;
    assert_eq!(seed.status, 200);
    assert_eq!(seed.body["success"], true);
    assert_eq!(seed.body["data"][2], json!({"name": "plain.iso", "size": "3.0 MB", "path": items[2]["path"]}));
    app.stop().await;
}

async fn seed_api_keeps_its_shapes_and_answers_honestly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/api/vms/list").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["success"], true);
    let test = r.body["data"].as_array().unwrap().iter().find(|v| v["name"] == "test").unwrap().clone();
    assert_eq!(test, json!({"name": "test", "state": "running", "cpu": "1", "memory": "65536 KiB"}));

    app.wait_for(|| async { app.get("/api/system/info").await.body["success"] == true }).await;
    let r = app.get("/api/system/info").await;
    let data = &r.body["data"];
    assert_eq!(r.body["success"], true);
    for key in ["hostname", "uptime", "cpu_count", "memory", "disk"] {
        assert!(data[key].is_string(), "{key} in {data}");
    }
    assert!(data["uptime"].as_str().unwrap().starts_with("up "));
    assert!(data["memory"].as_str().unwrap().contains(" MB ("), "{data}");

    let r = app.request("POST", "/api/vms/test/destroy", None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["returncode"], 0);
    let op = app.operation(r.body["operation_id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "succeeded", "it went through the ledger: {op:#}");
    assert_eq!(app.get("/api/vms/list").await.body["data"][0]["state"], "shut off");

    // Destroying a VM that is off fails, and the seed API now says so.
    let r = app.request("POST", "/api/vms/test/destroy", None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], false);
    assert!(r.body["error"].as_str().unwrap().contains("shutoff"), "{}", r.body);

    let r = app.get("/api/system/info?host=zz").await;
    assert_eq!((r.status, &r.body["success"]), (200, &json!(false)), "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("`zz`"), "{}", r.body);
    // Refused before it ran: in the seed's envelope, as its scripts read it.
    let r = app.request("POST", "/api/vms/no-such-vm/start", None, &[]).await;
    assert_eq!((r.status, &r.body["success"]), (200, &json!(false)), "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("no-such-vm"), "{}", r.body);

    let r = app.request("POST", "/api/vms/test%3Breboot/start", None, &[]).await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_parameter")));
    let spec = app.get("/openapi.json").await.body;
    assert_eq!(spec["paths"]["/api/vms/list"]["get"]["deprecated"], true);
    app.stop().await;
}

crate::on_both_backends!(
    hosts_report_liveness_vm_counts_and_system,
    isos_are_catalogued_with_their_checksums,
    seed_api_keeps_its_shapes_and_answers_honestly,
);
