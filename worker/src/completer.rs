//! The completer: one task per worker that records the outcomes of the
//! attempts that ended meanwhile in one transaction, frees their slots once
//! that is committed, and answers each job (see the runner).
//!
//! The same transaction claims the next work for those slots, from the
//! queues the ended attempts came from: one commit ends a batch and starts
//! the next, instead of one commit to end it and another to claim. What it
//! claimed goes to its queue's apalis stream, which starts it like any claim.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyperfleet_core::{
    app::{App, NextClaims},
    backoff::Backoff,
    operation::{Operation, WorkClass},
    outcome::{Finish, Recorded},
    store::claims_after,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::{
    runner::{MAX_BATCH, SlotWaiters},
    transport::{Batch, Claimed},
};

/// An attempt that ended, waiting for the completer to record it. The
/// completer frees its slot once the outcome is committed (the slots of a
/// batch all at once, so that the next claim takes them together), or hands
/// the slot back with the error.
#[derive(Debug)]
pub(crate) struct Ended {
    pub op: Operation,
    pub finish: Finish,
    pub slot: OwnedSemaphorePermit,
    pub recorded: oneshot::Sender<Reply>,
}

pub(crate) type Reply = Result<Recorded, (hyperfleet_core::Error, OwnedSemaphorePermit)>;

/// How many times the completer lets other tasks run, while each turn brings
/// more ended attempts, before it commits a batch.
const GATHER_YIELDS: usize = 8;

/// Where the completer's claims go: each queue's apalis stream registers here.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Batch>>>,
}

impl Handoff {
    /// What the completer claims for `queue` from now on arrives here.
    pub(crate) fn register(&self, queue: &str) -> mpsc::UnboundedReceiver<Batch> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().insert(queue.to_owned(), sender);
        receiver
    }

    pub(crate) fn serves(&self, queue: &str) -> bool {
        self.lock().get(queue).is_some_and(|q| !q.is_closed())
    }

    /// Gives `batch` to its queue's stream; hands it back if that has stopped.
    pub(crate) fn send(&self, queue: &str, batch: Batch) -> Result<(), Batch> {
        match self.lock().get(queue) {
            Some(stream) => stream.send(batch).map_err(|e| e.0),
            None => Err(batch),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Batch>>> {
        self.queues.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Who the completer claims as, and where its claims go.
#[derive(Debug, Clone)]
pub(crate) struct Claimer {
    pub host: String,
    pub lease: Duration,
    /// Closed once the runner stops taking work: then nothing more is claimed.
    pub tracker: TaskTracker,
    pub handoff: Arc<Handoff>,
}

impl Claimer {
    /// What the slots of `batch` claim next (see [`claims_after`]), from the
    /// queues still served; nothing once the runner stops taking work.
    fn next_claims(&self, batch: &[Ended]) -> NextClaims<'_> {
        let served = batch.iter().filter(|e| !self.tracker.is_closed() && self.handoff.serves(&e.op.queue));
        let queues = claims_after(served.map(|e| (e.op.queue.as_str(), e.op.kind.class())));
        NextClaims { host: &self.host, lease: self.lease, queues }
    }
}

/// How many batches of outcomes may be under way at once on PostgreSQL.
/// Measured on two cores, drains of 20,000 at concurrency 16, alternating
/// runs: two lanes 4,272 /s and three 4,490 /s (medians of five), three
/// 4,860 /s and four 4,742 /s (of four).
const POSTGRES_LANES: usize = 3;

/// The completer: records the outcomes that ended meanwhile in one
/// transaction, and answers each job once its outcome is committed (or not).
///
/// On PostgreSQL [`POSTGRES_LANES`] batches may be under way at once: while
/// one waits for its commit (the WAL flush), the attempts that ended
/// meanwhile start the next instead of waiting for it, and they can share one
/// flush. Their claims skip each other's rows, and their counters are
/// appended, not updated in place (see `Store::fold_counters`), so none waits
/// for another's commit. SQLite has one writer, so there a second batch would
/// only wait, smaller.
pub(crate) async fn complete(
    app: App,
    worker: String,
    backoff: Backoff,
    mut inbox: mpsc::UnboundedReceiver<Ended>,
    waiters: SlotWaiters,
    claimer: Claimer,
) {
    let lanes = if app.store().kind() == hyperfleet_core::store::BackendKind::Postgres { POSTGRES_LANES } else { 1 };
    let lane = Arc::new(Lane { app, worker, backoff, waiters, claimer });
    let mut running = tokio::task::JoinSet::new();
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        tokio::select! {
            biased;
            Some(ended) = running.join_next(), if !running.is_empty() => {
                if let Err(e) = ended {
                    tracing::error!(error = %e, "a batch of outcomes was not recorded; their leases will expire");
                }
                continue;
            }
            // Cancel-safe: a batch not taken here stays in the inbox.
            n = inbox.recv_many(&mut batch, MAX_BATCH), if running.len() < lanes => if n == 0 { break },
        }
        gather(&mut inbox, &mut batch).await;
        let lane = lane.clone();
        running.spawn(async move { lane.record(batch).await });
    }
    while running.join_next().await.is_some() {}
}

/// Attempts that started together tend to end together: lets those about to
/// end join `batch` rather than wait for the next commit.
async fn gather(inbox: &mut mpsc::UnboundedReceiver<Ended>, batch: &mut Vec<Ended>) {
    for _ in 0..GATHER_YIELDS {
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if batch.len() == before {
            break;
        }
    }
}

/// What recording a batch needs; shared by the batches under way.
struct Lane {
    app: App,
    worker: String,
    backoff: Backoff,
    waiters: SlotWaiters,
    claimer: Claimer,
}

impl Lane {
    /// Records `batch` and claims the next work for its slots in one
    /// transaction; without claiming if that fails; one by one if the batch
    /// cannot be recorded at all.
    async fn record(&self, mut batch: Vec<Ended>) {
        let (app, worker, backoff, claimer) = (&self.app, self.worker.as_str(), &self.backoff, &self.claimer);
        let ended: Vec<(&Operation, Finish)> = batch.iter().map(|e| (&e.op, e.finish.clone())).collect();
        let next = claimer.next_claims(&batch);
        if !next.queues.is_empty() {
            match app.finish_and_claim(&ended, worker, backoff, &next).await {
                Ok((recorded, claimed)) => {
                    drop(ended);
                    self.hand_over(batch, recorded, claimed).await;
                    return;
                }
                // Record them without claiming (below), which says what failed.
                Err(e) => tracing::debug!(error = %e, "recording and claiming together failed"),
            }
        }
        match app.finish_many(&ended, worker, backoff).await {
            Ok(recorded) => {
                let mut slots = Vec::with_capacity(batch.len());
                for (e, r) in batch.drain(..).zip(recorded) {
                    slots.push(e.slot);
                    let _ = e.recorded.send(Ok(r));
                }
                drop(slots);
                self.waiters.slot_back();
            }
            Err(e) if batch.len() == 1 => {
                if let Some(one) = batch.pop() {
                    let _ = one.recorded.send(Err((e, one.slot)));
                }
            }
            // One outcome may be what failed (e.g. its alert): record each alone.
            Err(e) => {
                tracing::warn!(error = %e, outcomes = batch.len(), "recording a batch failed; recording each alone");
                for one in batch.drain(..) {
                    match app.finish(&one.op, worker, one.finish.clone(), backoff).await {
                        Ok(r) => {
                            drop(one.slot);
                            self.waiters.slot_back();
                            let _ = one.recorded.send(Ok(r));
                        }
                        Err(e) => {
                            let _ = one.recorded.send(Err((e, one.slot)));
                        }
                    }
                }
            }
        }
    }

    /// Answers each job of `batch`, and gives the slots they held to what was
    /// claimed for them; the queues' own fetches are woken only for slots
    /// left over.
    async fn hand_over(&self, batch: Vec<Ended>, recorded: Vec<Recorded>, claimed: Vec<(String, Vec<Operation>)>) {
        let mut slots: HashMap<(String, WorkClass), Vec<OwnedSemaphorePermit>> = HashMap::new();
        for (e, r) in batch.into_iter().zip(recorded) {
            slots.entry((e.op.queue.clone(), e.op.kind.class())).or_default().push(e.slot);
            let _ = e.recorded.send(Ok(r));
        }
        for (queue, operations) in claimed {
            let mut started = Vec::with_capacity(operations.len());
            for operation in operations {
                // The claim took at most the slots of each class it was given.
                let Some(slot) = slots.get_mut(&(queue.clone(), operation.kind.class())).and_then(Vec::pop) else {
                    tracing::error!(operation = %operation.id, "claimed a kind without a slot; its lease will expire");
                    continue;
                };
                started.push(Claimed { operation: Box::new(operation), slot });
            }
            if let Err(back) = self.claimer.handoff.send(&queue, started) {
                hand_back(&self.app, &self.worker, &self.backoff, back).await;
            }
        }
        if slots.values().any(|left| !left.is_empty()) {
            drop(slots);
            self.waiters.slot_back();
        }
    }
}

/// Gives back work claimed for a queue whose stream has stopped (the worker
/// is shutting down), at once, as a stopping worker hands back what it runs.
pub(crate) async fn hand_back(app: &App, worker: &str, backoff: &Backoff, batch: Batch) {
    for claimed in batch {
        let id = claimed.operation.id;
        let why = "the worker stopped before it started the operation; handed back";
        if let Err(e) = app.abandon(id, Some(worker), why, backoff).await {
            tracing::error!(operation = %id, error = %e, "could not hand back; its lease will expire");
        }
    }
}
