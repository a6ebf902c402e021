//! The seed system's health and alert endpoints, in its shapes, over the ledger.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

async fn seed_health_and_alerts_keep_their_shapes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/api/health/status").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"success": false, "error": "No health status available"}));

    let r = app.request("POST", "/api/health/run", None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let code = r.body["returncode"].as_i64().unwrap();
    assert!((0..=2).contains(&code), "finished, with the seed's exit code: {}", r.body);
    assert_eq!(r.body["success"], code == 0);
    assert!(r.body["output"].as_str().unwrap().starts_with("hv1: "), "{}", r.body);
    let op = app.operation(r.body["operation_id"].as_str().unwrap()).await;
    assert_eq!((op["kind"].as_str(), op["status"].as_str()), (Some("health.run"), Some("succeeded")));

    let r = app.get("/api/health/status").await;
    assert_eq!(r.body["success"], true, "{}", r.body);
    let data = &r.body["data"];
    assert_eq!(data["hostname"], "hv1");
    let checks = data["checks"].as_object().unwrap();
    assert_eq!(checks["libvirt"]["status"], "OK", "{data:#}");
    assert!(checks["libvirt"]["message"].is_string());
    let count = |s: &str| checks.values().filter(|c| c["status"] == s).count() as u64;
    assert_eq!(
        (data["critical_errors"].as_u64(), data["warnings"].as_u64()),
        (Some(count("ERROR")), Some(count("WARN")))
    );
    let overall = if count("ERROR") > 0 {
        "ERROR"
    } else if count("WARN") > 0 {
        "WARN"
    } else {
        "OK"
    };
    assert_eq!(data["overall_status"], overall);
    assert_eq!(code, [("OK", 0), ("WARN", 1), ("ERROR", 2)].iter().find(|(s, _)| *s == overall).unwrap().1);

    for title in ["first", "second"] {
        let r = app.post("/api/v1/alerts", json!({"severity": "warning", "title": title, "message": "m"})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = app.get("/api/alerts/recent").await;
    assert_eq!(r.body["success"], true);
    let lines: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let ours: Vec<&&str> = lines.iter().filter(|l| l.ends_with(": m")).collect();
    assert_eq!(ours.len(), 2, "{lines:?}");
    assert!(ours[0].contains("] [WARNING] first: m") && ours[1].contains("] [WARNING] second: m"), "{lines:?}");
    app.stop().await;
}

crate::on_both_backends!(seed_health_and_alerts_keep_their_shapes);
