//! The runner carries out claimed operations: it runs each job under a renewed
//! lease and records how the attempt ended. Each class of work has slots of
//! its own (`[worker.slots]`): a queue claims only kinds whose class has a
//! free slot, so a flood of one class never delays another. It tracks what
//! runs so that shutdown can wait for it or hand it back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyperfleet_core::{
    OperationId,
    app::App,
    backoff::Backoff,
    operation::{OperationKind, WorkClass},
    outcome::{Finish, Recorded},
    store::Store,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{jobs, libvirt::Hypervisor, transport::Claimed};

/// How often recording an outcome is tried before the lease is left to expire
/// (the reaper then retries the operation), and the pause before each try.
const RECORD_TRIES_MS: [u64; 5] = [0, 200, 1_000, 2_000, 5_000];

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
    running: Mutex<HashMap<OperationId, CancellationToken>>,
    slots: HashMap<WorkClass, Arc<tokio::sync::Semaphore>>,
    /// Told whenever a slot may have come free.
    freed: tokio::sync::Notify,
}

/// One free slot of each class that had one, held while a queue claims: the
/// claim takes only kinds of these classes, and keeps the slot of the one it got.
#[derive(Debug)]
pub struct Reserved {
    permits: Vec<(WorkClass, OwnedSemaphorePermit)>,
}

impl Reserved {
    /// The kinds a claim may take.
    pub fn kinds(&self) -> Vec<OperationKind> {
        OperationKind::ALL.iter().copied().filter(|k| self.permits.iter().any(|(c, _)| *c == k.class())).collect()
    }

    /// The slot of `class`; the others are released.
    pub fn take(mut self, class: WorkClass) -> Option<OwnedSemaphorePermit> {
        let i = self.permits.iter().position(|(c, _)| *c == class)?;
        Some(self.permits.swap_remove(i).1)
    }
}

impl Runner {
    pub fn new(app: App, hypervisor: Arc<Hypervisor>, worker_id: String, cfg: &crate::WorkerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: app.store().clone(),
                app,
                hypervisor,
                host: cfg.host.clone(),
                worker_id,
                lease: cfg.lease,
                backoff: cfg.backoff,
                tracker: TaskTracker::new(),
                health: Arc::new(cfg.health.clone()),
                backups: Arc::new(cfg.backups.clone()),
                dirs: cfg.dirs.clone(),
                notifier: Arc::new(crate::alerts::Notifier::new(cfg.alerts.clone(), cfg.public_url.clone())),
                running: Mutex::default(),
                slots: WorkClass::ALL
                    .iter()
                    .map(|c| (*c, Arc::new(tokio::sync::Semaphore::new(cfg.slots.of(*c)))))
                    .collect(),
                freed: tokio::sync::Notify::new(),
            }),
        }
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
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable(); // a slot freed from here on wakes us
            if self.inner.tracker.is_closed() {
                return None;
            }
            let permits: Vec<(WorkClass, OwnedSemaphorePermit)> = self
                .inner
                .slots
                .iter()
                .filter_map(|(class, slots)| slots.clone().try_acquire_owned().ok().map(|p| (*class, p)))
                .collect();
            if !permits.is_empty() {
                return Some(Reserved { permits });
            }
            freed.await;
        }
    }

    /// Says that slots may have come free (a reservation was given back).
    pub fn slots_freed(&self) {
        self.inner.freed.notify_waiters();
    }

    /// Runs a claimed operation in its slot, in the background.
    pub fn start(&self, claimed: Claimed) {
        let Claimed { operation, slot } = claimed;
        let id = operation.id;
        let cancel = CancellationToken::new();
        self.lock().insert(id, cancel.clone());
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            this.execute(*operation, cancel).await;
            this.lock().remove(&id);
            drop(slot);
            this.slots_freed();
        });
    }

    async fn execute(&self, op: hyperfleet_core::operation::Operation, cancel: CancellationToken) {
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
        let lease_lost = CancellationToken::new();
        let keeper = tokio::spawn(keep_lease(
            inner.store.clone(),
            op.id,
            inner.worker_id.clone(),
            inner.lease,
            cancel.clone(),
            lease_lost.clone(),
        ));
        let finish = tokio::select! {
            finish = jobs::run(&ctx, &op) => finish,
            () = lease_lost.cancelled() => {
                tracing::warn!(parent: &span, "lease lost while running; the reaper has taken the operation back");
                keeper.abort();
                return;
            }
        };
        keeper.abort();
        match &finish {
            Finish::Failed(f) => {
                tracing::warn!(parent: &span, code = %f.code, class = f.class.as_str(), "attempt failed: {}", f.message)
            }
            Finish::Succeeded(_) => tracing::info!(parent: &span, "attempt succeeded"),
            Finish::Cancelled(why) => tracing::info!(parent: &span, "cancelled: {why}"),
        }
        // Recording the outcome must not be lost to a database blip: retry a
        // few times, then leave it to the reaper (the lease expires).
        for delay_ms in RECORD_TRIES_MS {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            match inner.app.finish(&op, &inner.worker_id, finish.clone(), &inner.backoff).await {
                Ok(Recorded::Status(status)) => {
                    tracing::info!(parent: &span, status = status.as_str(), "recorded");
                    return;
                }
                Ok(Recorded::LeaseLost) => {
                    tracing::warn!(parent: &span, "lease lost before the outcome was recorded");
                    return;
                }
                Err(e) => tracing::error!(parent: &span, error = %e, "could not record the outcome; retrying"),
            }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OperationId, CancellationToken>> {
        self.inner.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Renews the lease while the job runs, relays cancel requests, and signals
/// `lost` if another party took the operation back.
async fn keep_lease(
    store: Store,
    id: OperationId,
    worker: String,
    lease: Duration,
    cancel: CancellationToken,
    lost: CancellationToken,
) {
    let every = (lease / 3).min(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        match store.renew_lease(id, &worker, lease).await {
            Ok(Some(true)) => cancel.cancel(),
            Ok(Some(false)) => {}
            Ok(None) => {
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(operation = %id, error = %e, "lease renewal failed"),
        }
    }
}
