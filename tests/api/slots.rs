//! Each class of work has slots of its own: a flood of long diagnostics fills
//! the diagnostics slots and no more, and VM actions and health runs still run.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

async fn a_flood_of_one_class_never_delays_another(backend: Backend) {
    let env = vec![("HYPERFLEET__WORKER__SLOTS__DIAGNOSTICS".to_owned(), "2".to_owned())];
    let app = TestApp::spawn_with(backend, Options { env, ..Options::default() }).await;
    // A minute is the longest a diagnostic may hold a slot.
    let r = app.post("/api/v1/diagnostics/noop", json!({"sleep_ms": 60_001})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_body")), "{}", r.body);

    let mut flood = Vec::new();
    for _ in 0..6 {
        flood.push(app.noop(60_000, 0).await);
    }
    let statuses = || async {
        let mut s = Vec::new();
        for id in &flood {
            s.push(app.operation(id).await["status"].as_str().unwrap().to_owned());
        }
        s
    };
    app.wait_for(|| async { statuses().await.iter().filter(|s| *s == "running").count() == 2 }).await;

    let vm = app.post("/api/v1/vms/test/suspend", json!({})).await;
    assert_eq!(vm.status, 202, "{}", vm.body);
    let health = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
    assert_eq!(health.status, 202, "{}", health.body);
    let vm = app.wait_status(vm.body["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(vm["status"], "succeeded", "{vm:#}");
    let run = app.wait_status(health.body["items"][0]["id"].as_str().unwrap(), &["succeeded", "failed"]).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    // ... while the flood still holds its two slots and waits for them, no more.
    let now = statuses().await;
    assert_eq!(now.iter().filter(|s| *s == "running").count(), 2, "{now:?}");
    assert_eq!(now.iter().filter(|s| *s == "queued").count(), 4, "{now:?}");
    for id in &flood {
        app.post(&format!("/api/v1/operations/{id}/cancel"), json!({})).await;
    }
    for id in &flood {
        app.wait_status(id, &["cancelled", "succeeded"]).await;
    }
    app.stop().await;
}

/// A worker in the submitting process with a free slot takes the work in the
/// transaction that stores it (the 202 already says `running`, and its
/// attempt is open); with its slots full, work is stored queued and waits.
async fn a_submit_fills_a_free_slot_in_its_own_commit(backend: Backend) {
    // Each queue's fetch holds every free slot while it looks, so a submit
    // that meets one finds none free and stores its work queued (the fetch
    // then takes it). The queues look only when woken here: no poll every
    // 100 ms for a submit to meet.
    let env = vec![
        ("HYPERFLEET__WORKER__SLOTS__DIAGNOSTICS".to_owned(), "2".to_owned()),
        ("HYPERFLEET__WORKER__POLL_INTERVAL_MS".to_owned(), "60000".to_owned()),
    ];
    let app = TestApp::spawn_with(backend, Options { env, ..Options::default() }).await;
    // Once one has run, the worker's queues are served.
    let first = app.noop(0, 0).await;
    app.wait_status(&first, &["succeeded"]).await;
    // Its slot coming back started a look of each queue (finding nothing);
    // once those have given the slots back, the queues wait without them.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let submit = || async {
        let r = app.post("/api/v1/diagnostics/noop", json!({"sleep_ms": 60_000})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        r.body
    };
    let (a, b, c) = (submit().await, submit().await, submit().await);
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("running"), Some("running")), "{a:#} {b:#}");
    assert_eq!(a["attempt_count"], 1);
    assert_eq!(c["status"], "queued", "both slots are taken: {c:#}");
    let ids: Vec<&str> = [&a, &b, &c].iter().map(|o| o["id"].as_str().unwrap()).collect();
    let open = app.operation(ids[0]).await;
    assert_eq!(open["attempts"].as_array().map(Vec::len), Some(1), "its attempt is open: {open:#}");
    assert!(open["attempts"][0]["finished_at"].is_null(), "{open:#}");
    assert_eq!(app.operation(ids[2]).await["status"], "queued", "no slot came free");

    // The slot a cancel frees goes to the queued one.
    app.post(&format!("/api/v1/operations/{}/cancel", ids[0]), json!({})).await;
    app.wait_status(ids[2], &["running"]).await;
    for id in &ids[1..] {
        app.post(&format!("/api/v1/operations/{id}/cancel"), json!({})).await;
    }
    for id in &ids {
        assert_eq!(app.wait_status(id, &["cancelled", "succeeded"]).await["status"], "cancelled");
    }
    app.stop().await;
}

crate::on_both_backends!(a_flood_of_one_class_never_delays_another, a_submit_fills_a_free_slot_in_its_own_commit);
