//! What the ledger does inside a caller's transaction, on either backend:
//! insert an operation row, push its apalis wake-up job, wake the next
//! operation on a freed VM, close an attempt row.

use std::time::Duration;

use sqlx::{PgConnection, SqliteConnection, types::Json};

use super::rows::{OPERATION_COLUMNS, OperationRow};
use crate::{Error, OperationId, Result, Timestamp, operation::AttemptOutcome, queue::Wake};

/// Enqueue an apalis job that wakes `id`, inside the caller's transaction.
pub(crate) trait PushWake {
    async fn push_wake(&mut self, queue: &str, id: OperationId, run_at: Option<Timestamp>) -> Result<()>;

    /// Wake the operation that is next in line on a VM that just became free.
    async fn wake_next_on_vm(&mut self, host: &str, vm: &str) -> Result<()>;

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

/// The backend-independent half of [`PushWake`], written once for both connection types.
macro_rules! ledger_tx_common {
    ($db:ty) => {
        async fn wake_next_on_vm(&mut self, host: &str, vm: &str) -> Result<()> {
            let next: Option<(OperationId, String)> = sqlx::query_as::<$db, (OperationId, String)>(NEXT_ON_VM)
                .bind(host)
                .bind(vm)
                .bind(Timestamp::now())
                .fetch_optional(&mut *self)
                .await?;
            if let Some((id, queue)) = next {
                self.push_wake(&queue, id, None).await?;
            }
            Ok(())
        }

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

const APALIS_MAX_ATTEMPTS: i64 = 3;
const NEXT_ON_VM: &str = "SELECT id, queue FROM operations WHERE host = $1 AND vm = $2 \
    AND (status = 'queued' OR (status = 'retrying' AND next_attempt_at <= $3)) ORDER BY id LIMIT 1";

/// Wake-ups are armed up to [`WAKE_EARLY`] before the operation is due: apalis
/// keeps whole seconds on SQLite and PostgreSQL NOTIFYs only jobs already due,
/// so an early wake-up lets the runner wait out the rest precisely instead of
/// being a second or a poll interval late.
pub const WAKE_EARLY: Duration = Duration::from_secs(1);

fn early(run_at: Option<Timestamp>) -> Timestamp {
    let now = Timestamp::now();
    match run_at {
        Some(t) if t.minus(WAKE_EARLY) > now => t.minus(WAKE_EARLY),
        _ => now.minus(WAKE_EARLY),
    }
}

fn wake_bytes(id: OperationId) -> Result<Vec<u8>> {
    serde_json::to_vec(&Wake { operation_id: id }).map_err(Error::internal)
}

impl PushWake for SqliteConnection {
    async fn push_wake(&mut self, queue: &str, id: OperationId, run_at: Option<Timestamp>) -> Result<()> {
        let secs = early(run_at).0.timestamp();
        let task = apalis_core::task::builder::TaskBuilder::new(wake_bytes(id)?)
            .max_attempts(APALIS_MAX_ATTEMPTS as usize)
            .run_at_timestamp(secs.max(0) as u64)
            .build();
        apalis_sqlite::queries::push_tasks(self, queue, &[task]).await?;
        Ok(())
    }

    ledger_tx_common!(sqlx::Sqlite);
}

impl PushWake for PgConnection {
    async fn push_wake(&mut self, queue: &str, id: OperationId, run_at: Option<Timestamp>) -> Result<()> {
        // apalis-postgres exposes no push for a caller's transaction; this is its
        // insert, column for column (its trigger NOTIFYs listening workers).
        let at = early(run_at);
        sqlx::query::<sqlx::Postgres>(
            "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority) \
             VALUES ($1, $2, $3, 'Pending', 0, $4, $5, 0)",
        )
        .bind(ulid::Ulid::new().to_string())
        .bind(queue)
        .bind(wake_bytes(id)?)
        .bind(APALIS_MAX_ATTEMPTS as i32)
        .bind(at)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    ledger_tx_common!(sqlx::Postgres);
}
