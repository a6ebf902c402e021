//! The queue's own PostgreSQL connections, kept apart from the pool.
//!
//! Every claim, batch of outcomes and group of submits is one short
//! transaction. Through the pool each paid two round trips besides its own
//! statements: sqlx pings a connection when it hands it out (so that one
//! broken by a database restart is replaced) and pings it again, always,
//! when it is given back; and each began with a round of `SET LOCAL`s. Here
//! a connection is set up once, as it opens (the planner settings of
//! [`super::Store::begin_queue`] go in its startup packet), and handed out
//! as it is. A connection broken meanwhile is found by its `BEGIN`, which
//! has done nothing yet: it is dropped and the transaction begins on another.
//! A statement that is its own transaction (the completer's hand-over, see
//! `store::handover`) sends no `BEGIN`: on a broken connection it fails, the
//! connection is closed, and its caller does the work the transaction's way.

use std::{
    ops::{Deref, DerefMut},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use sqlx::{Connection as _, PgConnection, postgres::PgConnectOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most this many queue transactions of a process are open at once (fewer
/// if the pool itself may hold fewer connections): a worker's batches under
/// way, its queues' claims and the submits' group commit.
const MAX_CONNECTIONS: u32 = 8;

/// A connection this old is closed when given back, as the pool does with
/// its own (whatever a long-lived backend has cached is let go).
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The settings every queue statement is planned and run with (see
/// [`super::Store::begin_queue`] for why each).
const PLANNER: [(&str, &str); 5] = [
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("plan_cache_mode", "force_generic_plan"),
];

/// What `pg_stat_activity` shows for these connections, apart from the pool's.
pub const APPLICATION_NAME: &str = "hyperfleet-queue";

#[derive(Debug)]
pub(crate) struct QueueConnections {
    options: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    open: Arc<Semaphore>,
    acquire_timeout: Duration,
}

#[derive(Debug)]
struct Idle {
    conn: PgConnection,
    opened: Instant,
}

impl QueueConnections {
    pub(crate) fn new(options: &PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> Arc<Self> {
        let open = MAX_CONNECTIONS.min(max_connections).max(1) as usize;
        Arc::new(Self {
            options: options.clone().options(PLANNER).application_name(APPLICATION_NAME),
            idle: Mutex::default(),
            open: Arc::new(Semaphore::new(open)),
            acquire_timeout,
        })
    }

    /// A transaction begun on a connection of the queue's own: an idle one
    /// if its `BEGIN` succeeds, else a new one. Waits at most the acquire
    /// timeout for a free connection, and as long again to open one.
    pub(crate) async fn begin(self: &Arc<Self>) -> Result<QueueTx, sqlx::Error> {
        let slot = self.slot().await?;
        while let Some(Idle { mut conn, opened }) = self.take_idle() {
            match sqlx::raw_sql("BEGIN").execute(&mut conn).await {
                Ok(_) => return Ok(self.handing_out(conn, opened, slot)),
                // Nothing ran on it: another connection is as good.
                Err(e) => tracing::debug!(error = %e, "a queue connection was broken; using another"),
            }
        }
        let mut conn = self.connect().await?;
        sqlx::raw_sql("BEGIN").execute(&mut conn).await?;
        Ok(self.handing_out(conn, Instant::now(), slot))
    }

    /// A connection of the queue's own for one statement that is its own
    /// transaction (no `BEGIN`, no `COMMIT`: one round trip in all). Nothing
    /// checks it first: a connection broken meanwhile fails the statement,
    /// and is closed. Call [`QueueTx::done`] once the statement answered.
    pub(crate) async fn one_statement(self: &Arc<Self>) -> Result<QueueTx, sqlx::Error> {
        let slot = self.slot().await?;
        match self.take_idle() {
            Some(Idle { conn, opened }) => Ok(self.handing_out(conn, opened, slot)),
            None => Ok(self.handing_out(self.connect().await?, Instant::now(), slot)),
        }
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, self.open.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)
    }

    async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, PgConnection::connect_with(&self.options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    /// Closes the idle connections; those handed out close as they come back.
    pub(crate) async fn close(&self) {
        self.open.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for Idle { conn, .. } in idle {
            let _ = conn.close().await;
        }
    }

    fn take_idle(&self) -> Option<Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn handing_out(self: &Arc<Self>, conn: PgConnection, opened: Instant, slot: OwnedSemaphorePermit) -> QueueTx {
        QueueTx { conn: Some(conn), opened, ended: false, home: self.clone(), slot: Some(slot) }
    }

    /// Takes `conn` back, its transaction ended.
    fn give_back(&self, conn: PgConnection, opened: Instant) {
        if self.open.is_closed() || opened.elapsed() > MAX_LIFETIME {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { conn.close().await });
            }
            return;
        }
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(Idle { conn, opened });
    }
}

/// A transaction on one of the queue's connections; rolled back if dropped
/// before [`QueueTx::commit`] (or if that failed). Derefs to its connection,
/// as a sqlx transaction does.
#[derive(Debug)]
pub(crate) struct QueueTx {
    conn: Option<PgConnection>,
    opened: Instant,
    /// Committed: the connection goes back as it is.
    ended: bool,
    home: Arc<QueueConnections>,
    /// Held until the connection is back (after its rollback, if any).
    slot: Option<OwnedSemaphorePermit>,
}

impl QueueTx {
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        sqlx::raw_sql("COMMIT").execute(&mut *self).await?;
        self.ended = true;
        Ok(())
    }

    /// Gives back a connection of [`QueueConnections::one_statement`] whose
    /// statement answered (it committed or failed on its own); one whose
    /// transport failed is closed instead.
    pub(crate) fn done(mut self, answered: bool) {
        if answered {
            self.ended = true;
        } else if let Some(conn) = self.conn.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { conn.close().await });
        }
    }
}

impl Deref for QueueTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("a queue transaction holds its connection until dropped")
    }
}

impl DerefMut for QueueTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("a queue transaction holds its connection until dropped")
    }
}

impl Drop for QueueTx {
    /// Gives the connection back; one whose transaction did not commit is
    /// rolled back first, on a task of its own (as the pool releases its
    /// connections), and closed if that fails.
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let (home, opened, slot) = (self.home.clone(), self.opened, self.slot.take());
        if self.ended {
            home.give_back(conn, opened);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            if sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.is_ok() {
                home.give_back(conn, opened);
            }
            drop(slot);
        });
    }
}
