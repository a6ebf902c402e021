//! The worker's side of the ledger: claim an operation, keep its lease, finish
//! it, and recover operations whose worker disappeared. Every transition is a
//! conditional UPDATE, so concurrent workers and reapers cannot both win.

use sqlx::AssertSqlSafe;
use std::time::Duration;

use serde_json::Value;
use sqlx::types::Json;

use super::{
    Store,
    alert_routing::{FailedOp, alert_failed_for_good},
    read_db,
    rows::{OPERATION_COLUMNS, OperationRow},
    tx::{AttemptEnd, LedgerTx},
    with_db,
};
use crate::{
    Error, OperationId, Result, Timestamp,
    backoff::Backoff,
    operation::{AttemptOutcome, ErrorClass, JobFailure, Operation, OperationStatus},
};

/// What a worker got when it asked its queue for work.
#[derive(Debug)]
pub enum Claim {
    /// Now running under this worker's lease, as attempt `operation.attempt_count`.
    Claimed(Box<Operation>),
    /// Nothing runnable now; the earliest waiting retry is due then, if any.
    Idle(Option<Timestamp>),
    /// Another worker took the same operation at the same moment: ask again.
    Contended,
}

/// What recording an attempt's outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the operation is now in this status.
    Status(OperationStatus),
    /// The lease was lost (the reaper took the operation back): nothing was
    /// recorded, and the attempt is the reaper's to close.
    LeaseLost,
}

/// How an attempt ended, as the job body reports it.
#[derive(Debug, Clone)]
pub enum Finish {
    Succeeded(Value),
    Cancelled(String),
    Failed(JobFailure),
}

/// attempt_count, max_attempts, queue, host, vm, lease_owner, kind, params
type LeaseRow = (i32, i32, String, Option<String>, Option<String>, Option<String>, String, Json<Value>);

#[derive(Debug, Default, Clone, Copy)]
pub struct ReapReport {
    pub abandoned: usize,
}

impl Store {
    /// Claims the next runnable operation of `queue` for `worker` on `host`:
    /// the oldest one that is queued or due for a retry, and not behind another
    /// operation on its VM (VM operations keep their order; one runs at a time).
    /// Marks it running under a lease and opens its attempt row, in one transaction.
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn claim_next(&self, queue: &str, worker: &str, host: &str, lease: Duration) -> Result<Claim> {
        let now = Timestamp::now();
        // PostgreSQL: workers of several processes share a queue; each skips
        // the row another is claiming instead of queueing behind its lock.
        let lock = match self.kind() {
            super::BackendKind::Postgres => "FOR UPDATE SKIP LOCKED",
            super::BackendKind::Sqlite => "",
        };
        let sql = format!(
            "UPDATE operations SET status = 'running', attempt_count = attempt_count + 1, lease_owner = $2, \
             lease_expires_at = $3, started_at = COALESCE(started_at, $4), updated_at = $4, next_attempt_at = NULL \
             WHERE id = (SELECT o.id FROM operations o WHERE o.queue = $1 \
             AND (o.status = 'queued' OR (o.status = 'retrying' AND o.next_attempt_at <= $4)) \
             AND (o.vm IS NULL OR NOT EXISTS (SELECT 1 FROM operations o2 WHERE o2.host = o.host AND o2.vm = o.vm \
             AND o2.id <> o.id AND (o2.status = 'running' OR (o2.id < o.id AND o2.status IN ('queued', 'retrying'))))) \
             ORDER BY o.id LIMIT 1 {lock}) \
             AND status IN ('queued', 'retrying') RETURNING {OPERATION_COLUMNS}"
        );
        let claimed: Option<OperationRow> = with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let row = match sqlx::query_as::<Db, OperationRow>(AssertSqlSafe(sql.as_str()))
                .bind(queue)
                .bind(worker)
                .bind(now.plus(lease))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
            {
                Ok(row) => row,
                // The one-running-per-VM index: a concurrent claim won this VM.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(Claim::Contended),
                Err(e) => return Err(e.into()),
            };
            if let Some(row) = &row {
                sqlx::query::<Db>(
                    "INSERT INTO operation_attempts (operation_id, attempt, worker, host, started_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(row.id)
                .bind(row.attempt_count)
                .bind(worker)
                .bind(host)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            row
        });
        if let Some(row) = claimed {
            return Ok(Claim::Claimed(Box::new(row.into())));
        }
        let next_due: Option<Timestamp> = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, Option<Timestamp>>(
                "SELECT MIN(next_attempt_at) FROM operations WHERE queue = $1 AND status = 'retrying'",
            )
            .bind(queue)
            .fetch_one(pool)
            .await
        })?;
        Ok(Claim::Idle(next_due))
    }

    /// Extends the lease. `None`: the lease was lost (the reaper took the
    /// operation back); `Some(cancel_requested)` otherwise.
    pub async fn renew_lease(&self, id: OperationId, worker: &str, lease: Duration) -> Result<Option<bool>> {
        let now = Timestamp::now();
        let row: Option<bool> = with_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, bool>(
                "UPDATE operations SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'running' \
                 RETURNING cancel_requested",
            )
            .bind(id)
            .bind(worker)
            .bind(now.plus(lease))
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// Records how attempt `op.attempt_count` ended and moves the operation on:
    /// succeeded, cancelled, retrying (durable backoff) or failed.
    #[tracing::instrument(skip(self, op, finish), fields(id = %op.id, attempt = op.attempt_count))]
    pub async fn finish(&self, op: &Operation, worker: &str, finish: Finish, backoff: &Backoff) -> Result<Recorded> {
        let now = Timestamp::now();
        let (status, outcome, result, failure, next_at) = match finish {
            Finish::Succeeded(v) => (OperationStatus::Succeeded, AttemptOutcome::Succeeded, Some(v), None, None),
            Finish::Cancelled(msg) => (
                OperationStatus::Cancelled,
                AttemptOutcome::Cancelled,
                None,
                Some(JobFailure::new(ErrorClass::Permanent, "cancelled", msg)),
                None,
            ),
            Finish::Failed(f) if f.class == ErrorClass::Transient && op.attempt_count < op.max_attempts => {
                let next = now.plus(backoff.delay(op.attempt_count as u32));
                (OperationStatus::Retrying, AttemptOutcome::Failed, None, Some(f), Some(next))
            }
            Finish::Failed(f) => (OperationStatus::Failed, AttemptOutcome::Failed, None, Some(f), None),
        };
        let finished_at = status.is_terminal().then_some(now);
        let queue = crate::queue::queue_for(op.host.as_deref());
        // A success may carry a note worth keeping on the attempt (e.g. "destroyed after the timeout").
        let note = result.as_ref().and_then(|r| r.get("note")).and_then(Value::as_str);
        let (class, code, message) = match &failure {
            Some(f) if outcome != AttemptOutcome::Cancelled => {
                (Some(f.class.as_str()), Some(f.code.as_str()), Some(f.message.as_str()))
            }
            Some(f) => (None, Some(f.code.as_str()), Some(f.message.as_str())),
            None => (None, None, note),
        };
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query::<Db>(
                "UPDATE operations SET status = $3, result = $4, error_class = $5, error_code = $6, last_error = $7, \
                 next_attempt_at = $8, finished_at = $9, lease_owner = NULL, lease_expires_at = NULL, updated_at = $10 \
                 WHERE id = $1 AND status = 'running' AND lease_owner = $2",
            )
            .bind(op.id)
            .bind(worker)
            .bind(status.as_str())
            .bind(result.as_ref().map(Json))
            .bind(class)
            .bind(code)
            .bind(message)
            .bind(next_at)
            .bind(finished_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                // Said apart from every error: an error from the same call (an
                // alert conflict, say) must not read as a lost lease.
                return Ok(Recorded::LeaseLost);
            }
            tx.close_attempt(op.id, op.attempt_count, now, AttemptEnd { outcome, class, code, message }).await?;
            if status == OperationStatus::Failed {
                let failed = FailedOp {
                    id: op.id,
                    kind: op.kind.as_str(),
                    host: op.host.as_deref(),
                    vm: op.vm.as_deref(),
                    params: &op.params,
                    code: code.unwrap_or("failed"),
                    message: message.unwrap_or("failed"),
                };
                alert_failed_for_good(&mut *tx, failed, now).await?;
            }
            // A retry, or the next operation on this VM (always on the same host
            // queue), waits on `queue`.
            if next_at.is_some() || op.vm.is_some() {
                tx.announce(&queue).await?;
            }
            tx.commit().await?;
        });
        if next_at.is_some() || op.vm.is_some() {
            self.wakes.notify(&queue);
        }
        if status == OperationStatus::Failed {
            self.wakes.notify(crate::queue::ALERTS);
        }
        Ok(Recorded::Status(status))
    }

    /// Takes back running operations whose lease expired (their worker died or
    /// hung): the open attempt is closed as `abandoned`, and the operation is
    /// retried or, out of attempts, fails with class `abandoned`.
    pub async fn reap(&self, backoff: &Backoff) -> Result<ReapReport> {
        let now = Timestamp::now();
        let expired: Vec<OperationId> = with_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, OperationId>(
                "SELECT id FROM operations WHERE status = 'running' AND lease_expires_at < $1 ORDER BY id LIMIT 200",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        let mut report = ReapReport::default();
        for id in expired {
            let why = "the worker stopped renewing its lease (it died or hung)";
            if self.abandon(id, None, why, backoff).await? {
                report.abandoned += 1;
            }
        }
        if report.abandoned > 0 {
            self.wakes.notify_all();
        }
        Ok(report)
    }

    /// Hands a running operation back: `owner` = this worker on shutdown, or
    /// `None` for an expired lease (the reaper). Returns whether it did.
    pub async fn abandon(&self, id: OperationId, owner: Option<&str>, why: &str, backoff: &Backoff) -> Result<bool> {
        let now = Timestamp::now();
        let done = with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let row: Option<LeaseRow> =
                sqlx::query_as::<Db, LeaseRow>(
                    "SELECT attempt_count, max_attempts, queue, host, vm, lease_owner, kind, params FROM operations \
                     WHERE id = $1 AND status = 'running' AND (lease_owner = $2 OR ($2 IS NULL AND lease_expires_at < $3))",
                )
                .bind(id)
                .bind(owner)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((attempt, max, queue, host, vm, lease_owner, kind, params)) = row else { return Ok(false) };
            let message = format!("{why} (worker {})", lease_owner.as_deref().unwrap_or("?"));
            let retry = attempt < max;
            // Handed back by a stopping worker: runnable at once by another. Taken
            // back from a dead one: after the backoff, as any failed attempt.
            let delay = if owner.is_some() { Duration::ZERO } else { backoff.delay(attempt as u32) };
            let next_at = retry.then(|| now.plus(delay));
            let status = if retry { "retrying" } else { "failed" };
            sqlx::query::<Db>(
                "UPDATE operations SET status = $2, error_class = 'abandoned', error_code = 'abandoned', last_error = $3, \
                 next_attempt_at = $4, finished_at = $5, lease_owner = NULL, lease_expires_at = NULL, updated_at = $6 \
                 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(status)
            .bind(&message)
            .bind(next_at)
            .bind((!retry).then_some(now))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let abandoned = Some(ErrorClass::Abandoned.as_str());
            let end = AttemptEnd {
                outcome: AttemptOutcome::Abandoned,
                class: abandoned,
                code: abandoned,
                message: Some(&message),
            };
            tx.close_attempt(id, attempt, now, end).await?;
            if !retry {
                let failed = FailedOp {
                    id,
                    kind: &kind,
                    host: host.as_deref(),
                    vm: vm.as_deref(),
                    params: &params.0,
                    code: "abandoned",
                    message: &message,
                };
                alert_failed_for_good(&mut *tx, failed, now).await?;
            }
            if next_at.is_some() || vm.is_some() {
                tx.announce(&queue).await?;
            }
            tx.commit().await?;
            tracing::warn!(operation = %id, attempt, status, "{message}");
            Ok::<_, Error>(true)
        })?;
        Ok(done)
    }
}
