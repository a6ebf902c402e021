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
    /// Tells workers in other processes, at commit, that `queue` has work (or a
    /// new due time). In-process workers are told by the caller after commit.
    async fn announce(&mut self, queue: &str) -> Result<()>;

    /// Closes the open row of `attempt` with its outcome.
    async fn close_attempt(&mut self, id: OperationId, attempt: i32, now: Timestamp, end: AttemptEnd<'_>)
    -> Result<()>;

    /// Inserts a queued operation row (the caller pushes its wake-up in the same transaction).
    async fn insert_operation(&mut self, row: NewRow<'_>) -> std::result::Result<OperationRow, sqlx::Error>;
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

/// The backend-independent half of [`LedgerTx`], written once for both connection types.
macro_rules! ledger_tx_common {
    ($db:ty) => {
        async fn insert_operation(&mut self, r: NewRow<'_>) -> std::result::Result<OperationRow, sqlx::Error> {
            let sql = format!(
                "INSERT INTO operations (id, kind, host, vm, params, status, queue, requested_by, request_id, \
                 idempotency_key, request_hash, attempt_count, max_attempts, next_attempt_at, cancel_requested, \
                 retry_of, created_at, updated_at, schedule_id) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, 0, $11, NULL, FALSE, $13, $12, $12, $14) \
                 RETURNING {OPERATION_COLUMNS}"
            );
            sqlx::query_as::<$db, OperationRow>(sqlx::AssertSqlSafe(sql))
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
                .fetch_one(&mut *self)
                .await
        }

        async fn close_attempt(
            &mut self,
            id: OperationId,
            attempt: i32,
            now: Timestamp,
            end: AttemptEnd<'_>,
        ) -> Result<()> {
            sqlx::query::<$db>(
                "UPDATE operation_attempts SET finished_at = $3, outcome = $4, error_class = $5, error_code = $6, \
                 message = $7 WHERE operation_id = $1 AND attempt = $2 AND finished_at IS NULL",
            )
            .bind(id)
            .bind(attempt)
            .bind(now)
            .bind(end.outcome.as_str())
            .bind(end.class)
            .bind(end.code)
            .bind(end.message)
            .execute(&mut *self)
            .await?;
            Ok(())
        }
    };
}

impl LedgerTx for SqliteConnection {
    /// One process writes a SQLite file; its workers are told in-process, and
    /// workers of other processes find the work at their next poll.
    async fn announce(&mut self, _queue: &str) -> Result<()> {
        Ok(())
    }

    ledger_tx_common!(sqlx::Sqlite);
}

impl LedgerTx for PgConnection {
    async fn announce(&mut self, queue: &str) -> Result<()> {
        sqlx::query::<sqlx::Postgres>("SELECT pg_notify($1, $2)")
            .bind(WAKE_CHANNEL)
            .bind(queue)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    ledger_tx_common!(sqlx::Postgres);
}
