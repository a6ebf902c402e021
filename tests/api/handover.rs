//! A batch of outcomes and the next claim for its slots (the completer's
//! `finish_and_claim`; one statement on PostgreSQL): an outcome whose lease
//! was lost meanwhile is neither recorded nor counted, the others are, and
//! the slots claim the next work, whose attempt rows say when it started
//! (the worker counts its duration from that).

use std::time::Duration;

use hyperfleet_core::{
    app::NextClaims,
    backoff::Backoff,
    metrics::Delta,
    operation::{Operation, WorkClass},
    outcome::{Finish, Outcome, Recorded},
    queue::SHARED_QUEUE,
    store::{Claim, ClaimGroup, Fill, Handover, NextClaim},
};
use serde_json::json;

use crate::helpers::*;

const LEASE: Duration = Duration::from_secs(60);

/// The figure of a counter series (0 if it was never written).
async fn counter(core: &hyperfleet_core::app::App, name: &str, labels: &str) -> f64 {
    let counters = core.store().metric_counters().await.unwrap();
    counters.iter().filter(|(n, l, _)| n == name && l == labels).map(|(_, _, v)| v).sum()
}

async fn a_lost_lease_is_neither_recorded_nor_counted(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let core = app.core().await;
    let store = core.store().clone();
    store.bench_fill("handover", 4, Fill::Queued).await.unwrap();
    let two = [ClaimGroup::of_class(WorkClass::Diagnostics, 2)];
    let Claim::Claimed(running) = store.claim(SHARED_QUEUE, &two, "w1", "hv1", LEASE).await.unwrap() else {
        panic!("nothing claimed")
    };
    assert_eq!(running.len(), 2);
    assert!(running.iter().all(|op| op.attempt_started_at.is_some()), "a claim says when each attempt started");
    // The second is taken back from its worker (as the reaper would): its
    // outcome is no longer that worker's to record.
    let backoff = Backoff::default();
    assert!(core.abandon(running[1].id, Some("w1"), "taken back by the test", &backoff).await.unwrap());

    let succeeded = || Finish::Succeeded(json!({"ok": true}));
    let ended = [(&running[0], succeeded()), (&running[1], succeeded())];
    let next = NextClaims { host: "hv1", lease: LEASE, queues: vec![(SHARED_QUEUE.to_owned(), two.to_vec())] };
    let (recorded, claimed) = core.finish_and_claim(&ended, "w1", &backoff, &next).await.unwrap();

    assert_eq!(
        recorded,
        [Recorded::Status(hyperfleet_core::operation::OperationStatus::Succeeded), Recorded::LeaseLost]
    );
    let labels = r#"kind="noop",outcome="succeeded""#;
    assert_eq!(counter(&core, "hyperfleet_attempts_total", labels).await, 1.0, "only the recorded attempt counts");
    let finished = r#"kind="noop",status="succeeded""#;
    assert_eq!(counter(&core, "hyperfleet_operations_finished_total", finished).await, 1.0);
    let first = app.get(&format!("/api/v1/operations/{}", running[0].id)).await;
    assert_eq!(first.body["status"], "succeeded", "{}", first.body);
    let second = app.get(&format!("/api/v1/operations/{}", running[1].id)).await;
    assert_ne!(second.body["status"], "succeeded", "{}", second.body);

    // Both slots claimed again, oldest first: the one handed back (due at
    // once) and the next queued; each with its attempt row opened.
    let [(queue, next_ops)] = claimed.as_slice() else { panic!("claimed {claimed:?}") };
    assert_eq!(queue, SHARED_QUEUE);
    assert_eq!(next_ops.len(), 2);
    assert_eq!(next_ops[0].id, running[1].id);
    assert_ne!(next_ops[1].id, running[0].id);
    for op in next_ops {
        let started = op.attempt_started_at.expect("when the attempt started");
        let shown = app.get(&format!("/api/v1/operations/{}", op.id)).await;
        assert_eq!(shown.body["status"], "running", "{}", shown.body);
        let attempts = shown.body["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), op.attempt_count as usize, "{}", shown.body);
        let shown_start = attempts.last().unwrap()["started_at"].as_str().unwrap();
        let shown_start = chrono::DateTime::parse_from_rfc3339(shown_start).unwrap();
        assert_eq!(shown_start.timestamp_micros(), started.0.timestamp_micros(), "the attempt row's start");
    }
    app.stop().await;
}

crate::on_both_backends!(a_lost_lease_is_neither_recorded_nor_counted);

/// PostgreSQL's one statement itself (`Store::record_and_claim`, which the
/// completer's batches take there): a batch recorded whole, counted once and
/// followed by the next claim; or, a lease lost, nothing written at all (the
/// completer then records it the transaction's way, as above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_records_and_claims_in_one_statement() {
    let app = TestApp::spawn_with(Backend::Postgres, Options { worker: false, ..Options::default() }).await;
    let core = app.core().await;
    let store = core.store().clone();
    store.bench_fill("one-statement", 6, Fill::Queued).await.unwrap();
    let two = [ClaimGroup::of_class(WorkClass::Diagnostics, 2)];
    let claim = NextClaim { queue: SHARED_QUEUE, groups: &two, worker: "w1", host: "hv1", lease: LEASE };
    let counted = Delta { name: "hyperfleet_attempts_total", labels: "test=\"one-statement\"".into(), value: 2.0 };
    let backoff = Backoff::default();
    let succeed = |running: &[Operation]| -> Vec<Outcome> {
        let now = store.now();
        running.iter().map(|op| Outcome::of(op, Finish::Succeeded(json!({"ok": true})), &backoff, now)).collect()
    };
    let Claim::Claimed(first) = store.claim(SHARED_QUEUE, &two, "w1", "hv1", LEASE).await.unwrap() else {
        panic!("nothing claimed")
    };

    // Whole: both recorded, the batch's increments appended once, two more claimed.
    let outcomes = succeed(&first);
    let ended: Vec<(&Operation, &Outcome)> = first.iter().zip(&outcomes).collect();
    let Handover::Done { claimed: second } =
        store.record_and_claim(&ended, std::slice::from_ref(&counted), store.now(), claim).await.unwrap()
    else {
        panic!("not recorded whole")
    };
    for op in &first {
        let read = app.get(&format!("/api/v1/operations/{}", op.id)).await;
        assert_eq!(read.body["status"], "succeeded", "{}", read.body);
    }
    assert_eq!(counter(&core, counted.name, &counted.labels).await, 2.0);
    assert_eq!(second.len(), 2);
    assert!(second[0].id < second[1].id, "oldest first");
    assert!(second.iter().all(|op| op.attempt_started_at.is_some()));

    // One of the next batch is taken back (as the reaper would): the statement
    // writes nothing at all — neither outcome, nor counter, nor claim.
    assert!(core.abandon(second[1].id, Some("w1"), "taken back by the test", &backoff).await.unwrap());
    let outcomes = succeed(&second);
    let ended: Vec<(&Operation, &Outcome)> = second.iter().zip(&outcomes).collect();
    let answer = store.record_and_claim(&ended, std::slice::from_ref(&counted), store.now(), claim).await.unwrap();
    assert!(matches!(answer, Handover::LeaseLost), "{answer:?}");
    let kept = app.get(&format!("/api/v1/operations/{}", second[0].id)).await;
    assert_eq!(kept.body["status"], "running", "{}", kept.body);
    assert_eq!(counter(&core, counted.name, &counted.labels).await, 2.0, "nor counted");
    let queued = app.get("/api/v1/operations?status=queued").await;
    assert_eq!(queued.body["items"].as_array().map(Vec::len), Some(2), "nor claimed: {}", queued.body);
    app.stop().await;
}
