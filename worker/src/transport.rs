//! The ledger is the queue, and apalis runs the worker over it: each queue is
//! an apalis backend (apalis-core's `Backend`) whose task stream claims
//! runnable operations straight from `operations` — no second job table to
//! keep in step or to prune.
//!
//! The stream also starts what the runner's completer claimed for this queue
//! in the transaction that recorded the attempts before (see the completer).
//! Its own claims come only when the runner has free slots, as many operations
//! as there are free slots, in one statement; one apalis task is one such
//! batch, so every claimed operation starts at once. Between claims it waits for a wake-up (a commit in
//! this process, a PostgreSQL NOTIFY from another), the earliest due retry, or
//! the poll interval. A database error never ends it: the queue is marked as
//! not served (readiness, the heartbeat), the stream backs off and fetches
//! again — at once when the wake-up listener reconnects — and the mark is
//! cleared by the next successful fetch.

use std::time::Duration;

use std::task::{Context, Poll};

use apalis::prelude::*;
use apalis_core::{
    backend::{Backend, BackendConfig, finalize::Ephemeral},
    layers::Identity,
    task::task_id::RandomId,
};
use futures::{Stream, StreamExt};
use hyperfleet_core::{
    operation::Operation,
    store::{Claim, Store},
};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::runner::Runner;

/// A claimed operation and the runner slot it runs in.
#[derive(Debug)]
pub struct Claimed {
    pub operation: Box<Operation>,
    pub slot: OwnedSemaphorePermit,
}

/// What one claim took: the apalis task.
pub(crate) type Batch = Vec<Claimed>;

/// Fetch failures back off from this to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn handle(batch: Batch, runner: Data<Runner>) -> Result<(), BoxDynError> {
    for claimed in batch {
        runner.start(claimed);
    }
    Ok(())
}

/// Runs the apalis worker of `queue` until `stop`; its stream ends on `stop`.
pub async fn serve(store: Store, queue: String, runner: Runner, poll: Duration, stop: CancellationToken) {
    let name = format!("{}:{queue}", runner.worker_id());
    let backend = LedgerQueue { claims: claims(store, queue.clone(), runner.clone(), poll, stop.clone()) };
    let stopped = async move {
        stop.cancelled().await;
        Ok::<_, WorkerError>(())
    };
    if let Err(e) = WorkerBuilder::new(name).backend(backend).data(runner).build(handle).run_until(stopped).await {
        tracing::error!(queue, error = %e, "queue worker ended with an error");
    }
}

/// One queue of the ledger as an apalis backend: its tasks are batches of claimed operations.
struct LedgerQueue {
    claims: ClaimStream,
}

type ClaimStream = std::pin::Pin<Box<dyn Stream<Item = Batch> + Send>>;

impl Backend for LedgerQueue {
    type Task = Task<Batch>;
    type Error = std::convert::Infallible;

    fn poll_ready(&mut self, _: &mut Context<'_>, _: &WorkerContext) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>, _: &WorkerContext) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        self.claims.poll_next_unpin(cx).map(|claimed| claimed.map(|c| Ok(Task::new(c))))
    }

    fn poll_close(&mut self, _: &mut Context<'_>, _: &WorkerContext) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl BackendConfig for LedgerQueue {
    type Args = Batch;
    type Id = RandomId;
    /// The outcome is recorded by the runner in the ledger, not by apalis.
    type Kind = Ephemeral;
    type Config = ();
    type Layer = Identity;

    fn config(&self) -> &Self::Config {
        &()
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> Self::Layer {
        Identity::new()
    }
}

fn claims(store: Store, queue: String, runner: Runner, poll: Duration, stop: CancellationToken) -> ClaimStream {
    let wakes = store.wakes.subscribe(&queue);
    let handed = runner.handed_over(&queue);
    let state = Fetch { store, queue, runner, poll, stop, wakes, handed, backoff: MIN_BACKOFF, idle: None };
    futures::stream::unfold(state, |mut f| async move { Some((f.next_claim().await?, f)) }).boxed()
}

struct Fetch {
    store: Store,
    queue: String,
    runner: Runner,
    poll: Duration,
    stop: CancellationToken,
    wakes: hyperfleet_core::queue::WakeListener,
    /// What the runner's completer claimed for this queue, to start.
    handed: tokio::sync::mpsc::UnboundedReceiver<Batch>,
    backoff: Duration,
    /// Set when the last look found nothing to claim.
    idle: Option<Idle>,
}

/// What a queue that found nothing waits for before it looks again.
#[derive(Debug, Clone, Copy)]
struct Idle {
    /// The poll interval's end, or the earliest retry's due time.
    until: tokio::time::Instant,
    /// How many classes had free slots then: one more means a full class has one back.
    classes_free: usize,
}

impl Fetch {
    /// Waits for free slots and runnable operations; `None` once stopped.
    async fn next_claim(&mut self) -> Option<Batch> {
        loop {
            if let Some(idle) = self.idle {
                // The last look found nothing: look again once something may have
                // changed — a wake-up, the poll interval or due retry, or a slot of
                // a class that was full coming back (checked after arming, so none
                // is missed). Work the completer claimed meanwhile starts at once.
                let done = self.runner.work_done();
                let slot_back = done.notified();
                tokio::pin!(slot_back);
                slot_back.as_mut().enable();
                if self.runner.classes_with_free_slots() <= idle.classes_free {
                    tokio::select! {
                        biased;
                        // Claimed already: started even when stopping (shutdown then
                        // waits for it or hands it back).
                        Some(batch) = self.handed.recv() => return Some(batch),
                        () = self.stop.cancelled() => return None,
                        _ = self.wakes.next() => {}
                        () = tokio::time::sleep_until(idle.until) => {}
                        () = &mut slot_back => {}
                    }
                }
                self.idle = None;
            }
            let mut reserved = tokio::select! {
                biased;
                Some(batch) = self.handed.recv() => return Some(batch),
                () = self.stop.cancelled() => return None,
                reserved = self.runner.reserve() => reserved?,
            };
            let classes_free = reserved.classes();
            let (host, worker, lease) = self.runner.identity();
            let claimed = self.store.claim(&self.queue, &reserved.groups(), worker, host, lease).await;
            match claimed {
                Ok(Claim::Claimed(operations)) => {
                    self.served();
                    let batch = reserved.assign(operations);
                    drop(reserved);
                    self.runner.slots_freed();
                    return Some(batch);
                }
                Ok(Claim::Contended) => self.served(),
                Ok(Claim::Idle(next_due)) => {
                    self.served();
                    let until_due = next_due.map(|due| {
                        let micros = due.0.signed_duration_since(self.store.now().0).num_microseconds().unwrap_or(0);
                        Duration::from_micros(micros.max(0) as u64)
                    });
                    let wait = until_due.map_or(self.poll, |d| d.min(self.poll));
                    self.idle = Some(Idle { until: tokio::time::Instant::now() + wait, classes_free });
                    drop(reserved);
                    self.runner.slots_freed();
                }
                Err(e) => {
                    let wait = self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.store.serving.failing(&self.queue, &e.to_string());
                    tracing::warn!(queue = self.queue, error = %e, retry_in = ?wait, "could not fetch from the queue");
                    drop(reserved);
                    self.runner.slots_freed();
                    // A wake-up ends the wait early: the wake-up listener reconnecting
                    // (PostgreSQL is back) wakes every queue.
                    tokio::select! {
                        () = self.stop.cancelled() => return None,
                        _ = self.wakes.next() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn served(&mut self) {
        if self.backoff != MIN_BACKOFF {
            tracing::info!(queue = self.queue, "serving the queue again");
        }
        self.backoff = MIN_BACKOFF;
        self.store.serving.serving(&self.queue);
    }
}
