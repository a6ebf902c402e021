//! Group commit for submits: concurrent submits share one transaction, so
//! one fsync (SQLite) or one WAL flush (PostgreSQL) makes a whole group
//! durable. One task per store takes every submit waiting when it is free and
//! commits them together; each caller is answered only after that commit, so
//! a 202 still means stored. A lone submit waits for nobody: the task starts
//! as soon as one arrives, and what arrives meanwhile forms the next group.
//!
//! When a worker of this process serves a group's queue and has free slots
//! for its classes, the same transaction claims for it (the claim every
//! fetch makes, with its FIFO and one-per-VM rules): one commit stores the
//! work and starts it, instead of one commit to store it, a wake-up, and a
//! fetch's commit to claim it. Nothing is announced for a queue whose new
//! operations were all claimed so.
//!
//! If a group fails, each of its submits is tried again alone (and without
//! claiming), so one bad row (say, an idempotency key another request just
//! took) fails only its own submit, with its own error.

use std::{
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

use super::{
    Backend, ClaimGroup,
    tx::{LedgerTx, NewRow, Tx, on_tx},
};
use crate::{
    OperationId, Timestamp,
    operation::{NewOperation, Operation},
    queue::Wakes,
    time::Clock,
};

/// At most this many submits share one transaction.
const MAX_GROUP: usize = 64;

/// A worker of this process that can take work in the transaction that
/// submits it.
pub trait LocalWorker: Send + Sync + std::fmt::Debug {
    /// Holds free slots for a claim on `queue`, at most `wanted` of each
    /// class; `None` when this worker does not serve `queue`, is stopping, or
    /// has no free slot of those classes.
    fn reserve(&self, queue: &str, wanted: &[ClaimGroup]) -> Option<Box<dyn Reservation>>;
}

/// Slots held for a claim at submit. Dropped unused, they are given back.
pub trait Reservation: Send + Sync {
    /// What the claim may take.
    fn groups(&self) -> Vec<ClaimGroup>;
    /// Who claims: host, worker id, lease.
    fn claimant(&self) -> (&str, &str, Duration);
    /// Starts what the committed claim took in the slots held; gives the rest back.
    fn start(self: Box<Self>, claimed: Vec<Operation>);
}

/// What a submit asks to be stored.
#[derive(Debug)]
pub(crate) struct Submit {
    pub new: NewOperation,
    pub hash: String,
    pub queue: String,
    pub retry_of: Option<OperationId>,
    pub now: Timestamp,
}

/// A submit waiting for its group's commit.
#[derive(Debug)]
struct Pending {
    id: OperationId,
    submit: Submit,
    answer: oneshot::Sender<Result<Operation, sqlx::Error>>,
}

impl Pending {
    fn row(&self) -> NewRow<'_> {
        let s = &self.submit;
        NewRow {
            id: self.id,
            new: &s.new,
            hash: &s.hash,
            queue: &s.queue,
            retry_of: s.retry_of,
            schedule_id: None,
            now: s.now,
        }
    }
}

/// The submit side of a store: started at its first submit, ends with the store.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    inbox: OnceLock<mpsc::UnboundedSender<Pending>>,
    workers: Arc<LocalWorkers>,
}

impl GroupCommit {
    /// Stores the operation with whichever submits are waiting alongside it;
    /// returns it as committed (running if a worker here claimed it) once
    /// committed and its queue announced.
    pub(crate) async fn insert(
        &self,
        backend: &Backend,
        wakes: &Arc<Wakes>,
        clock: &Clock,
        submit: Submit,
    ) -> Result<Operation, sqlx::Error> {
        let inbox = self.inbox.get_or_init(|| {
            let (inbox, pending) = mpsc::unbounded_channel();
            let committer = Committer {
                backend: backend.clone(),
                wakes: wakes.clone(),
                clock: clock.clone(),
                workers: self.workers.clone(),
            };
            tokio::spawn(committer.run(pending));
            inbox
        });
        let (answer, answered) = oneshot::channel();
        inbox.send(Pending { id: OperationId::new(), submit, answer }).map_err(|_| sqlx::Error::PoolClosed)?;
        answered.await.map_err(|_| sqlx::Error::PoolClosed)?
    }

    /// From now on, `worker` may take work in the transaction that submits it
    /// (for as long as it lives).
    pub(crate) fn claim_for(&self, worker: Weak<dyn LocalWorker>) {
        self.workers.lock().push(worker);
    }
}

/// The workers of this process that claim at submit.
#[derive(Debug, Default)]
struct LocalWorkers(Mutex<Vec<Weak<dyn LocalWorker>>>);

impl LocalWorkers {
    /// Per queue of `group` (in the order first seen) that a worker here has
    /// free slots for: those slots, at most as many of each class as the
    /// group brings.
    fn reserve(&self, group: &[Pending]) -> Vec<(String, Box<dyn Reservation>)> {
        let mut workers = self.lock();
        workers.retain(|w| w.strong_count() > 0);
        if workers.is_empty() {
            return Vec::new();
        }
        let wanted = super::claims_after(group.iter().map(|p| (p.submit.queue.as_str(), p.submit.new.kind.class())));
        wanted
            .into_iter()
            .filter_map(|(queue, groups)| {
                let reserved = workers.iter().filter_map(Weak::upgrade).find_map(|w| w.reserve(&queue, &groups))?;
                Some((queue, reserved))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<dyn LocalWorker>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The group committer's task: what it commits to, and with.
struct Committer {
    backend: Backend,
    wakes: Arc<Wakes>,
    clock: Clock,
    workers: Arc<LocalWorkers>,
}

impl Committer {
    /// Commits groups until its store (the sender) is gone.
    async fn run(self, mut inbox: mpsc::UnboundedReceiver<Pending>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while inbox.recv_many(&mut group, MAX_GROUP).await > 0 {
            let reserved = self.workers.reserve(&group);
            if !reserved.is_empty() {
                match self.insert_and_claim(&group, &reserved).await {
                    Ok((rows, claimed)) => {
                        self.answer_claimed(group.drain(..).zip(rows), reserved.into_iter().zip(claimed));
                        continue;
                    }
                    Err(e) => tracing::debug!(error = %e, submits = group.len(), "submitting and claiming failed"),
                }
            }
            // The slots go back; the group is stored as if no worker were here.
            drop(reserved);
            match insert_all(&self.backend, &group).await {
                Ok(rows) => self.answer(group.drain(..).zip(rows.into_iter().map(Ok))),
                Err(e) if group.len() == 1 => self.answer(group.drain(..).zip(std::iter::once(Err(e)))),
                Err(e) => {
                    tracing::debug!(error = %e, submits = group.len(), "a group commit failed; committing each alone");
                    for pending in group.drain(..) {
                        let row = insert_all(&self.backend, std::slice::from_ref(&pending))
                            .await
                            .map(|mut rows| rows.remove(0));
                        self.answer(std::iter::once((pending, row)));
                    }
                }
            }
        }
    }

    /// Inserts `group` and claims for each reservation, in one transaction;
    /// the rows as inserted, and what each reservation claimed.
    async fn insert_and_claim(
        &self,
        group: &[Pending],
        reserved: &[(String, Box<dyn Reservation>)],
    ) -> crate::Result<(Vec<Operation>, Vec<Vec<Operation>>)> {
        let mut tx = Tx::begin_queue(&self.backend, &self.wakes, &self.clock).await?;
        let rows: Vec<NewRow<'_>> = group.iter().map(Pending::row).collect();
        let inserted = on_tx!(tx, |c, Db| c.insert_operations(&rows).await)?;
        let mut claimed = Vec::with_capacity(reserved.len());
        for (queue, reservation) in reserved {
            let (host, worker, lease) = reservation.claimant();
            match tx.claim(queue, &reservation.groups(), worker, host, lease).await? {
                Some(operations) => claimed.push(operations),
                // A worker of another process won one of the same VMs.
                None => return Err(crate::Error::conflict("claim_contended", "a concurrent claim took a VM")),
            }
        }
        tx.commit().await?;
        Ok((inserted.into_iter().map(Into::into).collect(), claimed))
    }

    /// Starts what was claimed, then answers each submit with its operation
    /// as committed; announces only the queues where a new operation is
    /// left waiting.
    fn answer_claimed(
        &self,
        stored: impl Iterator<Item = (Pending, Operation)>,
        claims: impl Iterator<Item = ((String, Box<dyn Reservation>), Vec<Operation>)>,
    ) {
        let mut running: Vec<Operation> = Vec::new();
        for ((_, reservation), operations) in claims {
            running.extend(operations.iter().cloned());
            reservation.start(operations);
        }
        for (pending, inserted) in stored {
            let operation = match running.iter().position(|o| o.id == inserted.id) {
                Some(i) => running.swap_remove(i),
                None => {
                    self.wakes.announce(&pending.submit.queue);
                    inserted
                }
            };
            let _ = pending.answer.send(Ok(operation));
        }
    }

    /// Announces each stored operation's queue, then answers its submit.
    fn answer(&self, answers: impl Iterator<Item = (Pending, Result<Operation, sqlx::Error>)>) {
        for (pending, row) in answers {
            if row.is_ok() {
                self.wakes.announce(&pending.submit.queue);
            }
            // The caller may have gone (its request was dropped): the row stays.
            let _ = pending.answer.send(row);
        }
    }
}

/// Inserts every row of `group` with one statement; its rows in order. One
/// statement outside a transaction block is its own transaction (all its rows
/// or none, committed before it answers): no `BEGIN` and `COMMIT` round trips.
async fn insert_all(backend: &Backend, group: &[Pending]) -> Result<Vec<Operation>, sqlx::Error> {
    let store = Pools { backend };
    let rows = super::with_db!(store, |pool, Db| {
        let rows: Vec<NewRow<'_>> = group.iter().map(Pending::row).collect();
        let mut conn = pool.acquire().await?;
        conn.insert_operations(&rows).await
    })?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// What [`super::with_db!`] reads the pools from.
struct Pools<'a> {
    backend: &'a Backend,
}
