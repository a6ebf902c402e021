//! Group commit for submits: concurrent submits share one transaction, so
//! one fsync (SQLite) or one WAL flush (PostgreSQL) makes a whole group
//! durable. One task per store takes every submit waiting when it is free and
//! commits them together; each caller is answered only after that commit, so
//! a 202 still means stored. A lone submit waits for nobody: the task starts
//! as soon as one arrives, and what arrives meanwhile forms the next group.
//!
//! If a group fails, each of its submits is tried again alone, so one bad
//! row (say, an idempotency key another request just took) fails only its
//! own submit, with its own error.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::{
    Backend,
    rows::OperationRow,
    tx::{LedgerTx, NewRow},
};
use crate::{OperationId, Timestamp, operation::NewOperation, queue::Wakes};

/// At most this many submits share one transaction.
const MAX_GROUP: usize = 64;

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
    answer: oneshot::Sender<Result<OperationRow, sqlx::Error>>,
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
}

impl GroupCommit {
    /// Stores the operation with whichever submits are waiting alongside it;
    /// returns its row once committed (and its queue announced).
    pub(crate) async fn insert(
        &self,
        backend: &Backend,
        wakes: &Arc<Wakes>,
        submit: Submit,
    ) -> Result<OperationRow, sqlx::Error> {
        let inbox = self.inbox.get_or_init(|| {
            let (inbox, pending) = mpsc::unbounded_channel();
            tokio::spawn(commit_groups(backend.clone(), wakes.clone(), pending));
            inbox
        });
        let (answer, answered) = oneshot::channel();
        inbox.send(Pending { id: OperationId::new(), submit, answer }).map_err(|_| sqlx::Error::PoolClosed)?;
        answered.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// The group committer: ends when its store (the sender) is gone.
async fn commit_groups(backend: Backend, wakes: Arc<Wakes>, mut inbox: mpsc::UnboundedReceiver<Pending>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while inbox.recv_many(&mut group, MAX_GROUP).await > 0 {
        match insert_all(&backend, &group).await {
            Ok(rows) => answer(&wakes, group.drain(..).zip(rows.into_iter().map(Ok))),
            Err(e) if group.len() == 1 => answer(&wakes, group.drain(..).zip(std::iter::once(Err(e)))),
            Err(e) => {
                tracing::debug!(error = %e, submits = group.len(), "a group commit failed; committing each alone");
                for pending in group.drain(..) {
                    let row = insert_all(&backend, std::slice::from_ref(&pending)).await.map(|mut rows| rows.remove(0));
                    answer(&wakes, std::iter::once((pending, row)));
                }
            }
        }
    }
}

/// Announces each stored operation's queue, then answers its submit.
fn answer(wakes: &Wakes, answers: impl Iterator<Item = (Pending, Result<OperationRow, sqlx::Error>)>) {
    for (pending, row) in answers {
        if row.is_ok() {
            wakes.announce(&pending.submit.queue);
        }
        // The caller may have gone (its request was dropped): the row stays.
        let _ = pending.answer.send(row);
    }
}

/// Inserts every row of `group` with one statement; its rows in order. One
/// statement outside a transaction block is its own transaction (all its rows
/// or none, committed before it answers): no `BEGIN` and `COMMIT` round trips.
async fn insert_all(backend: &Backend, group: &[Pending]) -> Result<Vec<OperationRow>, sqlx::Error> {
    let store = Pools { backend };
    super::with_db!(store, |pool, Db| {
        let rows: Vec<NewRow<'_>> = group.iter().map(Pending::row).collect();
        let mut conn = pool.acquire().await?;
        conn.insert_operations(&rows).await
    })
}

/// What [`super::with_db!`] reads the pools from.
struct Pools<'a> {
    backend: &'a Backend,
}
