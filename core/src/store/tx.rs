//! What the ledger does inside a caller's transaction, on either backend:
//! insert an operation row, announce work on a queue, wake the next operation
//! on a freed VM, close an attempt row.

use sqlx::{PgConnection, SqliteConnection, types::Json};

use super::rows::{OPERATION_COLUMNS, OperationRow};
use crate::{OperationId, Result, Timestamp, operation::AttemptOutcome};

/// The PostgreSQL channel on which commits announce work; the payload is the queue name.
pub const WAKE_CHANNEL: &str = "hyperfleet_queue";

/// The ledger's steps inside a caller's transaction.
pub(crate) trait LedgerTx {
    /// Closes the open row of `attempt` with its outcome; returns when the attempt started.
    async fn close_attempt(
        &mut self,
        id: OperationId,
        attempt: i32,
        now: Timestamp,
        end: AttemptEnd<'_>,
    ) -> Result<Option<Timestamp>>;

    /// Inserts queued operation rows with one statement; returns them in the
    /// order given (the caller announces their queues).
    async fn insert_operations(&mut self, rows: &[NewRow<'_>]) -> std::result::Result<Vec<OperationRow>, sqlx::Error>;
}

/// Everything an operation row is created from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRow<'a> {
    pub id: OperationId,
    pub new: &'a crate::operation::NewOperation,
    pub hash: &'a str,
    pub queue: &'a str,
    pub retry_of: Option<OperationId>,
    pub schedule_id: Option<crate::ScheduleId>,
    pub now: Timestamp,
}

/// How an attempt row is closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptEnd<'a> {
    pub outcome: AttemptOutcome,
    pub class: Option<&'a str>,
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// The columns a new operation row is written with.
const NEW_COLUMNS: &str = "id, kind, host, vm, params, status, queue, requested_by, request_id, idempotency_key, \
    request_hash, attempt_count, max_attempts, next_attempt_at, cancel_requested, retry_of, created_at, updated_at, \
    schedule_id, class";

/// The backend-independent half of [`LedgerTx`], written once for both connection types.
macro_rules! ledger_tx_common {
    ($db:ty) => {
        async fn close_attempt(
            &mut self,
            id: OperationId,
            attempt: i32,
            now: Timestamp,
            end: AttemptEnd<'_>,
        ) -> Result<Option<Timestamp>> {
            let started = sqlx::query_scalar::<$db, Timestamp>(
                "UPDATE operation_attempts SET finished_at = $3, outcome = $4, error_class = $5, error_code = $6, \
                 message = $7 WHERE operation_id = $1 AND attempt = $2 AND finished_at IS NULL RETURNING started_at",
            )
            .bind(id)
            .bind(attempt)
            .bind(now)
            .bind(end.outcome.as_str())
            .bind(end.class)
            .bind(end.code)
            .bind(end.message)
            .fetch_optional(&mut *self)
            .await?;
            Ok(started)
        }
    };
}

impl LedgerTx for SqliteConnection {
    ledger_tx_common!(sqlx::Sqlite);

    /// One row of numbered parameters per operation (SQLite plans in microseconds).
    async fn insert_operations(&mut self, rows: &[NewRow<'_>]) -> std::result::Result<Vec<OperationRow>, sqlx::Error> {
        const WIDTH: usize = 15;
        let values: Vec<String> = (0..rows.len())
            .map(|i| {
                let p = |k: usize| format!("${}", i * WIDTH + k);
                #[rustfmt::skip]
                let row = [p(1), p(2), p(3), p(4), p(5), "'queued'".into(), p(6), p(7), p(8), p(9), p(10), "0".into(),
                    p(11), "NULL".into(), "FALSE".into(), p(13), p(12), p(12), p(14), p(15)];
                format!("({})", row.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO operations ({NEW_COLUMNS}) VALUES {} RETURNING {OPERATION_COLUMNS}",
            values.join(", ")
        );
        let mut q = sqlx::query_as::<sqlx::Sqlite, OperationRow>(sqlx::AssertSqlSafe(sql));
        for r in rows {
            q = q
                .bind(r.id)
                .bind(r.new.kind.as_str())
                .bind(&r.new.host)
                .bind(&r.new.vm)
                .bind(Json(&r.new.params))
                .bind(r.queue)
                .bind(&r.new.requested_by)
                .bind(&r.new.request_id)
                .bind(&r.new.idempotency_key)
                .bind(r.hash)
                .bind(r.new.max_attempts)
                .bind(r.now)
                .bind(r.retry_of)
                .bind(r.schedule_id)
                .bind(r.new.kind.class().as_str());
        }
        Ok(in_order(q.fetch_all(&mut *self).await?, rows))
    }
}

impl LedgerTx for PgConnection {
    ledger_tx_common!(sqlx::Postgres);

    /// One text whatever the group's size (arrays, one per column): prepared
    /// and planned once per connection, not once per group.
    async fn insert_operations(&mut self, rows: &[NewRow<'_>]) -> std::result::Result<Vec<OperationRow>, sqlx::Error> {
        let sql = format!(
            "INSERT INTO operations ({NEW_COLUMNS}) SELECT r.id, r.kind, r.host, r.vm, r.params, 'queued', r.queue, \
             r.requested_by, r.request_id, r.idempotency_key, r.request_hash, 0, r.max_attempts, NULL, FALSE, \
             r.retry_of, r.now, r.now, r.schedule_id, r.class \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::text[], $11::int4[], $12::timestamptz[], $13::uuid[], $14::uuid[], \
             $15::text[]) AS r(id, kind, host, vm, params, queue, requested_by, request_id, idempotency_key, \
             request_hash, max_attempts, now, retry_of, schedule_id, class) RETURNING {OPERATION_COLUMNS}"
        );
        let inserted = sqlx::query_as::<sqlx::Postgres, OperationRow>(sqlx::AssertSqlSafe(sql))
            .bind(rows.iter().map(|r| r.id.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.kind.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.host.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.vm.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| Json(&r.new.params)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.queue).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.requested_by.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.request_id.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.idempotency_key.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.hash).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.max_attempts).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.now.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.retry_of.map(|id| id.0)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.schedule_id.map(|id| id.0)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.new.kind.class().as_str()).collect::<Vec<_>>())
            .fetch_all(&mut *self)
            .await?;
        Ok(in_order(inserted, rows))
    }
}

/// RETURNING promises no order: the inserted rows in the order of `rows`.
fn in_order(mut inserted: Vec<OperationRow>, rows: &[NewRow<'_>]) -> Vec<OperationRow> {
    inserted.sort_by_key(|row| rows.iter().position(|r| r.id == row.id));
    inserted
}

/// One transaction on either backend: what the application layer writes a
/// change, the alert it implies and its audit entry in, so that they commit
/// together or not at all. Queues announced in it are woken in this process
/// once it commits; dropped uncommitted, it rolls back and wakes nobody.
pub struct Tx {
    pub(crate) inner: TxInner,
    wakes: std::sync::Arc<crate::queue::Wakes>,
    /// Queues with work for this process's workers and other processes'.
    announced: std::collections::BTreeSet<String>,
    /// This process's listeners only (e.g. the alert router).
    woken: std::collections::BTreeSet<String>,
    /// The transaction's instant: every row it writes is stamped with the same time.
    now: Timestamp,
    pub(super) clock: crate::time::Clock,
    /// Counter increments added and not yet written (see `Tx::add_counters`).
    pub(super) counters: Vec<crate::metrics::Delta>,
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(PgTx),
}

/// A PostgreSQL transaction: on a pooled connection, or on one of the
/// queue's own (see [`super::queue_conns`]). Derefs to its connection.
pub(crate) enum PgTx {
    Pool(sqlx::Transaction<'static, sqlx::Postgres>),
    Queue(super::queue_conns::QueueTx),
}

impl PgTx {
    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        match self {
            Self::Pool(t) => t.commit().await,
            Self::Queue(t) => t.commit().await,
        }
    }
}

impl std::ops::Deref for PgTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Self::Pool(t) => t,
            Self::Queue(t) => t,
        }
    }
}

impl std::ops::DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Pool(t) => &mut *t,
            Self::Queue(t) => &mut *t,
        }
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").field("announced", &self.announced).field("woken", &self.woken).finish_non_exhaustive()
    }
}

/// Runs `$body` with `$conn` bound to the transaction's connection and `$db`
/// to its sqlx database type: the same SQL text serves both backends.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident, $db:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::store::tx::TxInner::Sqlite(t) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::store::tx::TxInner::Postgres(t) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                let $conn: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl super::Store {
    /// Opens a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.backend {
            super::Backend::Sqlite(pools) => TxInner::Sqlite(pools.write.begin().await?),
            super::Backend::Postgres(pool, _) => TxInner::Postgres(PgTx::Pool(pool.begin().await?)),
        };
        Ok(self.tx(inner))
    }

    /// Opens a write transaction for the queue's own statements (claims,
    /// finishes, their counters), each of which reads a row or a few through
    /// an index. On PostgreSQL it runs on one of the queue's own connections
    /// (see [`super::queue_conns`]), whose settings have these statements
    /// planned once per connection, without sequential scans and with nested
    /// loops only:
    ///
    /// - Their texts do not vary (limits are parameters, batches are arrays),
    ///   and their generic plan is used from the first run: planned each time,
    ///   the claim cost 3.4 ms to plan against 0.9 ms to run.
    /// - A generic plan is made once and kept. Made while a table still had a
    ///   page or two (a new install, a queue drained from empty), a scan was
    ///   the cheapest plan then and stayed as the table grew (measured: closing
    ///   a batch's attempts read 10,000 rows at 20,000 attempts; a planner's
    ///   own choice, not a statistic that can be kept fresh enough). A hash or
    ///   merge join, cheapest while a table is small, would likewise read all
    ///   of it each run; a batch's few rows are joined by index lookups.
    /// - No bitmap scans: a bitmap scan never marks the index entries it finds
    ///   dead. Planned beside a long history, the batch's close found its
    ///   `running` rows by a bitmap scan of a status index, so every entry a
    ///   claim had left there stayed and each close read them all again: a
    ///   20,000-op drain beside 1,000,000 finished ran at 2,200 /s against
    ///   5,600 /s with plain index scans, which mark them.
    pub async fn begin_queue(&self) -> Result<Tx> {
        Tx::begin_queue(&self.backend, &self.wakes, &self.clock).await
    }

    fn tx(&self, inner: TxInner) -> Tx {
        Tx::new(inner, &self.wakes, &self.clock)
    }
}

impl Tx {
    /// [`super::Store::begin_queue`] for a part of the store that holds its
    /// backend, wake-ups and clock but not the store (the group committer).
    pub(crate) async fn begin_queue(
        backend: &super::Backend,
        wakes: &std::sync::Arc<crate::queue::Wakes>,
        clock: &crate::time::Clock,
    ) -> Result<Self> {
        let inner = match backend {
            super::Backend::Sqlite(pools) => TxInner::Sqlite(pools.write.begin().await?),
            super::Backend::Postgres(_, queue) => TxInner::Postgres(PgTx::Queue(queue.begin().await?)),
        };
        Ok(Self::new(inner, wakes, clock))
    }

    fn new(inner: TxInner, wakes: &std::sync::Arc<crate::queue::Wakes>, clock: &crate::time::Clock) -> Self {
        // Taken once the writer is ours: nothing committed after this instant precedes it.
        Self {
            inner,
            wakes: wakes.clone(),
            announced: Default::default(),
            woken: Default::default(),
            now: clock.now(),
            clock: clock.clone(),
            counters: Vec::new(),
        }
    }

    /// Writes the counters still to write, commits, then announces its
    /// queues and wakes its listeners.
    pub async fn commit(mut self) -> Result<()> {
        self.write_counters().await?;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        for queue in &self.announced {
            self.wakes.announce(queue);
        }
        for queue in &self.woken {
            self.wakes.notify(queue);
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, TxInner::Postgres(_))
    }

    /// The transaction's instant, taken when it began.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Tells the workers of `queue`, once this commits, that it has work or a
    /// new due time (see [`crate::queue::Wakes::announce`]).
    pub fn announce(&mut self, queue: &str) {
        self.announced.insert(queue.to_owned());
    }

    /// Wakes this process's `listener` after commit (e.g. the alert router).
    pub fn wake_after_commit(&mut self, listener: &str) {
        self.woken.insert(listener.to_owned());
    }

    /// Records a queued operation and announces it on its queue.
    pub async fn insert_operation(
        &mut self,
        new: &crate::operation::NewOperation,
        links: Links,
    ) -> Result<crate::operation::Operation> {
        let now = self.now();
        let id = links.id.unwrap_or_default();
        let queue = crate::queue::queue_for(new.host.as_deref());
        let hash = new.request_hash();
        let row = NewRow {
            id,
            new,
            hash: &hash,
            queue: &queue,
            retry_of: links.retry_of,
            schedule_id: links.schedule_id,
            now,
        };
        let row: OperationRow =
            on_tx!(self, |c, Db| c.insert_operations(&[row]).await)?.pop().ok_or(sqlx::Error::RowNotFound)?;
        self.announce(&queue);
        Ok(row.into())
    }
}

/// What a new operation is linked to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Links {
    /// Its id, when the caller needs to know it before (e.g. a fire row names it).
    pub id: Option<OperationId>,
    pub retry_of: Option<OperationId>,
    pub schedule_id: Option<crate::ScheduleId>,
}
