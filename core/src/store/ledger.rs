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
    rows::{OPERATION_COLUMNS, OperationRow},
    tx::{AttemptEnd, PushWake},
    with_db,
};
use crate::{
    Error, OperationId, Result, Timestamp,
    backoff::Backoff,
    operation::{AttemptOutcome, ErrorClass, JobFailure, Operation, OperationStatus},
};

/// What a worker got when it tried to claim an operation.
#[derive(Debug)]
pub enum Claim {
    /// Now running under this worker's lease, as attempt `operation.attempt_count`.
    Claimed(Box<Operation>),
    /// Waiting for a retry; not before this time.
    NotDue(Timestamp),
    /// Another operation on the same VM runs or comes first (queued, running or
    /// waiting for its retry): VM operations keep their order. It wakes this one when done.
    Busy,
    /// Already finished, running elsewhere, or unknown: nothing to do.
    Nothing,
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
    pub rewoken: usize,
}

impl Store {
    /// Claims `id` for `worker` on `host`: marks it running under a lease and
    /// opens its attempt row, in one transaction.
    #[tracing::instrument(skip(self))]
    pub async fn claim(&self, id: OperationId, worker: &str, host: &str, lease: Duration) -> Result<Claim> {
        // Try the claim first: it is what usually happens, in one round trip.
        // Only when it does not take is the operation read to say why.
        let now = Timestamp::now();
        let sql = format!(
            "UPDATE operations SET status = 'running', attempt_count = attempt_count + 1, lease_owner = $2, \
             lease_expires_at = $3, started_at = COALESCE(started_at, $4), updated_at = $4, next_attempt_at = NULL \
             WHERE id = $1 AND status IN ('queued', 'retrying') AND (next_attempt_at IS NULL OR next_attempt_at <= $4) \
             AND (vm IS NULL OR NOT EXISTS (SELECT 1 FROM operations o2 WHERE o2.host = operations.host \
             AND o2.vm = operations.vm AND o2.id < operations.id AND o2.status IN ('queued', 'running', 'retrying'))) \
             RETURNING {OPERATION_COLUMNS}"
        );
        let claimed: Option<OperationRow> = with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let row = match sqlx::query_as::<Db, OperationRow>(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(worker)
                .bind(now.plus(lease))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
            {
                Ok(row) => row,
                // The one-running-per-VM index: another operation on this VM holds it.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(row) = &row {
                sqlx::query::<Db>(
                    "INSERT INTO operation_attempts (operation_id, attempt, worker, host, started_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
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
        let op = match self.operation(id).await {
            Ok(op) => op,
            Err(Error::NotFound { .. }) => return Ok(Claim::Nothing),
            Err(e) => return Err(e),
        };
        Ok(match (op.status(), op.next_attempt_at) {
            (OperationStatus::Queued | OperationStatus::Retrying, Some(due)) if due > now => Claim::NotDue(due),
            (OperationStatus::Queued | OperationStatus::Retrying, _) if op.vm.is_some() => Claim::Busy,
            _ => Claim::Nothing,
        })
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
    pub async fn finish(
        &self,
        op: &Operation,
        worker: &str,
        finish: Finish,
        backoff: &Backoff,
    ) -> Result<OperationStatus> {
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
                return Err(Error::conflict(
                    "lease_lost",
                    format!("operation {} is no longer leased to {worker}", op.id),
                ));
            }
            tx.close_attempt(op.id, op.attempt_count, now, AttemptEnd { outcome, class, code, message }).await?;
            if status == OperationStatus::Failed {
                let failed = FailedOp {
                    id: op.id,
                    kind: &op.kind,
                    host: op.host.as_deref(),
                    vm: op.vm.as_deref(),
                    params: &op.params,
                    code: code.unwrap_or("failed"),
                    message: message.unwrap_or("failed"),
                };
                alert_failed_for_good(&mut *tx, failed, now).await?;
            }
            if let Some(next) = next_at {
                tx.push_wake(&queue, op.id, Some(next)).await?;
            }
            if let (Some(host), Some(vm)) = (&op.host, &op.vm) {
                tx.wake_next_on_vm(host, vm).await?;
            }
            tx.commit().await?;
        });
        // A retry, or the next operation on this VM (same host queue), waits on `queue`.
        if next_at.is_some() || op.vm.is_some() {
            self.wakes.notify(&queue);
        }
        if status == OperationStatus::Failed {
            self.wakes.notify(crate::queue::ALERTS);
        }
        Ok(status)
    }

    /// Takes back running operations whose lease expired (their worker died or
    /// hung): the open attempt is closed as `abandoned`, and the operation is
    /// retried or, out of attempts, fails with class `abandoned`. Also re-wakes
    /// runnable operations whose wake-up job was lost.
    pub async fn reap(&self, backoff: &Backoff, stale_after: Duration) -> Result<ReapReport> {
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
        let stale_before = now.minus(stale_after);
        let stale: Vec<(OperationId, String)> = with_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (OperationId, String)>(
                "UPDATE operations SET updated_at = $1 WHERE id IN (SELECT id FROM operations \
                 WHERE status IN ('queued', 'retrying') AND updated_at < $2 \
                 AND (next_attempt_at IS NULL OR next_attempt_at < $2) ORDER BY id LIMIT 200) RETURNING id, queue",
            )
            .bind(now)
            .bind(stale_before)
            .fetch_all(pool)
            .await
        })?;
        for (id, queue) in &stale {
            with_db!(self, |pool, Db| {
                let mut conn = pool.acquire().await?;
                conn.push_wake(queue, *id, None).await?;
            });
        }
        report.rewoken = stale.len();
        if report.abandoned + report.rewoken > 0 {
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
            let next_at = retry.then(|| now.plus(backoff.delay(attempt as u32)));
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
            if let Some(next) = next_at {
                tx.push_wake(&queue, id, Some(next)).await?;
            }
            if let (Some(host), Some(vm)) = (&host, &vm) {
                tx.wake_next_on_vm(host, vm).await?;
            }
            tx.commit().await?;
            tracing::warn!(operation = %id, attempt, status, "{message}");
            Ok::<_, Error>(true)
        })?;
        Ok(done)
    }

    /// Pushes a wake-up for `id` at `at` outside any transition (a worker that
    /// got a wake-up too early re-arms it).
    pub async fn rearm(&self, id: OperationId, queue: &str, at: Timestamp) -> Result<()> {
        with_db!(self, |pool, Db| {
            let mut conn = pool.acquire().await?;
            conn.push_wake(queue, id, Some(at)).await?;
        });
        Ok(())
    }

    /// Deletes apalis's finished wake-up jobs older than `age`: the ledger, not
    /// apalis's table, is the history users read.
    pub async fn prune_transport(&self, age: Duration) -> Result<u64> {
        let before = Timestamp::now().minus(age);
        let deleted = match &self.backend {
            super::Backend::Sqlite(super::SqlitePools { write: pool, .. }) => {
                sqlx::query("DELETE FROM Jobs WHERE status IN ('Done', 'Killed') AND done_at < $1")
                    .bind(before.0.timestamp())
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            super::Backend::Postgres(pool) => {
                sqlx::query("DELETE FROM apalis.jobs WHERE status IN ('Done', 'Killed') AND done_at < $1")
                    .bind(before)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        Ok(deleted)
    }
}
