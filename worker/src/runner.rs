//! The runner carries out claimed operations: it runs each job under a renewed
//! lease and records how the attempt ended. Each class of work has slots of
//! its own (`[worker.slots]`): a queue claims only kinds whose class has a
//! free slot — as many as are free, in one statement — so a flood of one class
//! never delays another. It tracks what runs so that shutdown can wait for it
//! or hand it back.
//!
//! The database work is batched: one task renews the leases of everything
//! running in one statement, and one completer records the outcomes that
//! ended meanwhile in one transaction. A slot is free only once its outcome
//! is committed; if a batch fails, each outcome is recorded alone, so one bad
//! outcome never holds back the others.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyperfleet_core::{
    OperationId,
    app::App,
    backoff::Backoff,
    operation::{Operation, WorkClass},
    outcome::{Finish, Recorded},
    store::Store,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

mod at_submit;
mod slots;

pub use slots::Reserved;
pub(crate) use slots::SlotWaiters;

use crate::{
    completer::{Claimer, Ended, Handoff, complete},
    jobs,
    libvirt::Hypervisor,
    transport::Claimed,
};

/// How often recording an outcome is tried before the lease is left to expire
/// (the reaper then retries the operation), and the pause before each try.
const RECORD_TRIES_MS: [u64; 5] = [0, 200, 1_000, 2_000, 5_000];

/// At most this many operations of one class are claimed by one statement,
/// and at most this many outcomes are committed by one transaction.
pub(crate) const MAX_BATCH: usize = 64;

#[derive(Debug, Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    app: App,
    store: Store,
    hypervisor: Arc<Hypervisor>,
    host: String,
    worker_id: String,
    lease: Duration,
    backoff: Backoff,
    tracker: TaskTracker,
    health: Arc<hyperfleet_core::settings::HealthSettings>,
    backups: Arc<hyperfleet_core::settings::BackupSettings>,
    dirs: crate::system::WatchedDirs,
    notifier: Arc<crate::alerts::Notifier>,
    /// What runs: its cancel request, and the sign that its lease was lost.
    running: Mutex<HashMap<OperationId, Leased>>,
    /// The completer's inbox.
    ended: mpsc::UnboundedSender<Ended>,
    slots: HashMap<WorkClass, Arc<tokio::sync::Semaphore>>,
    /// Who waits for a slot.
    waiters: SlotWaiters,
    /// Where the completer sends the work it claims for each queue.
    handoff: Arc<Handoff>,
}

#[derive(Debug, Clone)]
struct Leased {
    cancel: CancellationToken,
    lost: CancellationToken,
}

impl Runner {
    pub fn new(app: App, hypervisor: Arc<Hypervisor>, worker_id: String, cfg: &crate::WorkerConfig) -> Self {
        let (ended, inbox) = mpsc::unbounded_channel();
        let waiters = SlotWaiters::default();
        let tracker = TaskTracker::new();
        let handoff = Arc::new(Handoff::default());
        let claimer =
            Claimer { host: cfg.host.clone(), lease: cfg.lease, tracker: tracker.clone(), handoff: handoff.clone() };
        tokio::spawn(complete(app.clone(), worker_id.clone(), cfg.backoff, inbox, waiters.clone(), claimer));
        let this = Self {
            inner: Arc::new(Inner {
                store: app.store().clone(),
                app,
                hypervisor,
                host: cfg.host.clone(),
                worker_id,
                lease: cfg.lease,
                backoff: cfg.backoff,
                tracker,
                health: Arc::new(cfg.health.clone()),
                backups: Arc::new(cfg.backups.clone()),
                dirs: cfg.dirs.clone(),
                notifier: Arc::new(crate::alerts::Notifier::new(cfg.alerts.clone(), cfg.public_url.clone())),
                running: Mutex::default(),
                ended,
                slots: WorkClass::ALL
                    .iter()
                    .map(|c| (*c, Arc::new(tokio::sync::Semaphore::new(cfg.slots.of(*c)))))
                    .collect(),
                waiters,
                handoff,
            }),
        };
        tokio::spawn(keep_leases(Arc::downgrade(&this.inner)));
        this
    }

    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// This worker's host, id and lease: what a claim is made with.
    pub fn identity(&self) -> (&str, &str, Duration) {
        (&self.inner.host, &self.inner.worker_id, self.inner.lease)
    }

    /// Waits until some class has a free slot and reserves one of each such
    /// class; `None` once the runner is shutting down.
    pub async fn reserve(&self) -> Option<Reserved> {
        loop {
            let freed = self.inner.waiters.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable(); // a slot freed from here on wakes us
            if self.inner.tracker.is_closed() {
                return None;
            }
            if let Some(reserved) = self.inner.try_reserve(|_| MAX_BATCH) {
                return Some(reserved);
            }
            freed.await;
        }
    }

    /// How many classes have a free slot now.
    pub fn classes_with_free_slots(&self) -> usize {
        self.inner.slots.values().filter(|s| s.available_permits() > 0).count()
    }

    /// Says that slots may have come free (a reservation was given back).
    pub fn slots_freed(&self) {
        self.inner.waiters.freed.notify_waiters();
    }

    /// Lets the store's submits claim for this runner's free slots, in their
    /// own transaction (see [`at_submit`]), for as long as the runner lives.
    pub fn claim_at_submit(&self) {
        let inner: std::sync::Weak<dyn hyperfleet_core::store::LocalWorker> = Arc::downgrade(&self.inner) as _;
        self.inner.store.claim_at_submit(inner);
    }

    /// Where the work the completer claims for `queue` arrives (its stream).
    pub fn handed_over(&self, queue: &str) -> mpsc::UnboundedReceiver<crate::transport::Batch> {
        self.inner.handoff.register(queue)
    }

    /// What is told when running work gives its slot back.
    pub fn work_done(&self) -> Arc<tokio::sync::Notify> {
        self.inner.waiters.done.clone()
    }

    /// Runs a claimed operation in its slot, in the background.
    pub fn start(&self, claimed: Claimed) {
        let Claimed { operation, slot } = claimed;
        let id = operation.id;
        let leased = Leased { cancel: CancellationToken::new(), lost: CancellationToken::new() };
        self.lock().insert(id, leased.clone());
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            // The slot comes back unless the completer freed it.
            let slot = this.execute(*operation, leased, slot).await;
            this.lock().remove(&id);
            if let Some(slot) = slot {
                drop(slot);
                this.inner.waiters.slot_back();
            }
        });
    }

    async fn execute(&self, op: Operation, leased: Leased, slot: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
        let Leased { cancel, lost: lease_lost } = leased;
        let inner = &self.inner;
        let span = tracing::info_span!("operation", id = %op.id, kind = %op.kind, host = ?op.host, vm = ?op.vm, attempt = op.attempt_count, request_id = ?op.request_id);
        let ctx = jobs::JobContext {
            app: inner.app.clone(),
            store: inner.store.clone(),
            hypervisor: inner.hypervisor.clone(),
            host: inner.host.clone(),
            cancel: cancel.clone(),
            health: inner.health.clone(),
            backups: inner.backups.clone(),
            dirs: inner.dirs.clone(),
            notifier: inner.notifier.clone(),
        };
        let finish = tokio::select! {
            finish = jobs::run(&ctx, &op) => finish,
            () = lease_lost.cancelled() => {
                tracing::warn!(parent: &span, "lease lost while running; the reaper has taken the operation back");
                return Some(slot);
            }
        };
        match &finish {
            Finish::Failed(f) => {
                tracing::warn!(parent: &span, code = %f.code, class = f.class.as_str(), "attempt failed: {}", f.message)
            }
            Finish::Succeeded(_) => tracing::info!(parent: &span, "attempt succeeded"),
            Finish::Cancelled(why) => tracing::info!(parent: &span, "cancelled: {why}"),
        }
        // Recording the outcome must not be lost to a database blip: retry a
        // few times, then leave it to the reaper (the lease expires).
        let mut slot = slot;
        for delay_ms in RECORD_TRIES_MS {
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            match self.record(&op, finish.clone(), slot).await {
                Ok(Recorded::Status(status)) => {
                    tracing::info!(parent: &span, status = status.as_str(), "recorded");
                    return None;
                }
                Ok(Recorded::LeaseLost) => {
                    tracing::warn!(parent: &span, "lease lost before the outcome was recorded");
                    return None;
                }
                Err((e, back)) => {
                    tracing::error!(parent: &span, error = %e, "could not record the outcome; retrying");
                    slot = back?;
                }
            }
        }
        Some(slot)
    }

    /// Hands the outcome to the completer and waits until it is committed.
    /// On an error the slot comes back, unless the completer has stopped.
    async fn record(
        &self,
        op: &Operation,
        finish: Finish,
        slot: OwnedSemaphorePermit,
    ) -> Result<Recorded, (hyperfleet_core::Error, Option<OwnedSemaphorePermit>)> {
        let (recorded, answer) = oneshot::channel();
        let gone = || hyperfleet_core::Error::internal("the completer has stopped");
        let ended = Ended { op: op.clone(), finish, slot, recorded };
        self.inner.ended.send(ended).map_err(|e| (gone(), Some(e.0.slot)))?;
        match answer.await {
            Ok(reply) => reply.map_err(|(e, slot)| (e, Some(slot))),
            Err(_) => Err((gone(), None)),
        }
    }

    /// Stops taking work, waits up to `grace` for running operations, then hands the rest back.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.tracker.close();
        if tokio::time::timeout(grace, inner.tracker.wait()).await.is_ok() {
            return;
        }
        // Hand back what is still running, all at once: each write waits at
        // most the database's acquire timeout. (The jobs are not cancelled:
        // that would record them as cancelled by a user; they end with the
        // process, and another worker takes them up at once.)
        let left: Vec<OperationId> = self.lock().keys().copied().collect();
        let hand_back = left.into_iter().map(|id| async move {
            let why = "the worker shut down before the operation finished; handed back";
            match inner.app.abandon(id, Some(&inner.worker_id), why, &inner.backoff).await {
                Ok(_) => tracing::warn!(operation = %id, "handed back on shutdown"),
                Err(e) => tracing::error!(operation = %id, error = %e, "could not hand back; its lease will expire"),
            }
        });
        futures::future::join_all(hand_back).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OperationId, Leased>> {
        self.inner.lock()
    }
}

impl Inner {
    /// Reserves the free slots of each class, at most `wanted` of it; `None`
    /// when that is none at all.
    fn try_reserve(&self, wanted: impl Fn(WorkClass) -> usize) -> Option<Reserved> {
        let permits: Vec<(WorkClass, Vec<OwnedSemaphorePermit>)> = self
            .slots
            .iter()
            .map(|(class, slots)| {
                let free = std::iter::from_fn(|| slots.clone().try_acquire_owned().ok());
                (*class, free.take(wanted(*class).min(MAX_BATCH)).collect::<Vec<_>>())
            })
            .filter(|(_, permits)| !permits.is_empty())
            .collect();
        (!permits.is_empty()).then_some(Reserved { permits })
    }

    /// What a claim at submit needs of this runner.
    fn handle(&self) -> at_submit::Handle {
        at_submit::Handle {
            host: self.host.clone(),
            worker_id: self.worker_id.clone(),
            lease: self.lease,
            app: self.app.clone(),
            backoff: self.backoff,
            handoff: self.handoff.clone(),
            waiters: self.waiters.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OperationId, Leased>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Renews the leases of everything the runner runs, in one statement per
/// round; relays cancel requests, and tells a job whose lease another party
/// took back. Ends with the runner.
async fn keep_leases(runner: std::sync::Weak<Inner>) {
    loop {
        let Some(inner) = runner.upgrade() else { return };
        let every = (inner.lease / 3).min(Duration::from_secs(1));
        drop(inner);
        tokio::time::sleep(every).await;
        let Some(inner) = runner.upgrade() else { return };
        let running: Vec<(OperationId, Leased)> = inner.lock().iter().map(|(id, l)| (*id, l.clone())).collect();
        if running.is_empty() {
            continue;
        }
        let ids: Vec<OperationId> = running.iter().map(|(id, _)| *id).collect();
        match inner.store.renew_leases(&ids, &inner.worker_id, inner.lease).await {
            Ok(held) => {
                for (id, leased) in &running {
                    match held.iter().find(|(h, _)| h == id) {
                        Some((_, true)) => leased.cancel.cancel(),
                        Some((_, false)) => {}
                        // Not held: taken back, or its outcome was recorded just now
                        // (then the job has ended and nobody waits on this).
                        None => leased.lost.cancel(),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, running = ids.len(), "lease renewal failed"),
        }
    }
}
