//! Recording how attempts ended, many in one go: one statement moves every
//! operation whose lease the worker still holds and closes their attempt
//! rows (two on SQLite). What a completer commits in one transaction.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AssertSqlSafe, types::Json};

use super::tx::{TxInner, on_tx};
use crate::{
    OperationId, Result, Timestamp,
    operation::{ErrorClass, Operation},
    outcome::Outcome,
};

/// `(...), (...)` rows of `width` placeholders, numbered after the first `skip`.
fn values(rows: usize, width: usize, skip: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (0..width).map(|c| format!("${}", skip + r * width + c + 1)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl super::Tx {
    /// Records each `(op, outcome)` for attempt `op.attempt_count`, where
    /// `worker` still holds the lease; closes those attempt rows, and announces
    /// the queues where a retry or the next operation on a VM waits. Answers in
    /// the same order: when the attempt started, or `None` when the lease was
    /// lost (nothing written for it).
    pub async fn record_outcomes(
        &mut self,
        ended: &[(&Operation, &Outcome)],
        worker: &str,
    ) -> Result<Vec<Option<Timestamp>>> {
        if ended.is_empty() {
            return Ok(Vec::new());
        }
        let (held, started) = self.close(ended, worker).await?;
        let closing: Vec<&(&Operation, &Outcome)> = ended.iter().filter(|(op, _)| held.contains(&op.id)).collect();
        let mut queues = BTreeSet::new();
        for (op, o) in &closing {
            if o.next_attempt_at.is_some() || op.vm.is_some() {
                queues.insert(crate::queue::queue_for(op.host.as_deref()));
            }
        }
        for queue in queues {
            self.announce(&queue);
        }
        let now = self.now();
        Ok(ended
            .iter()
            .map(|(op, _)| held.contains(&op.id).then(|| started.get(&op.id).copied().unwrap_or(now)))
            .collect())
    }

    /// Moves each operation whose lease `worker` still holds, and closes its
    /// attempt row: on PostgreSQL in one statement (one round trip), on
    /// SQLite (whose `WITH` cannot update) the attempt rows by a second.
    /// Returns the ids still held and when each closed attempt started.
    async fn close(&mut self, ended: &[(&Operation, &Outcome)], worker: &str) -> Result<Closed> {
        let now = self.now();
        let postgres = self.is_postgres();
        let update = "UPDATE operations SET status = v.status, result = v.result, error_class = v.error_class, \
             error_code = v.error_code, last_error = v.last_error, next_attempt_at = v.next_attempt_at, \
             finished_at = v.finished_at, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
             FROM v WHERE operations.id = v.id AND operations.status = 'running' AND operations.lease_owner = $2";
        let rows: Vec<(OperationId, Option<Timestamp>)> = match &mut self.inner {
            // One text whatever the batch's size (arrays): prepared and planned once per connection.
            TxInner::Postgres(c) => {
                let sql = format!(
                    "WITH v AS (SELECT * FROM unnest($3::uuid[], $4::int4[], $5::text[], $6::jsonb[], $7::text[], \
                     $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::text[]) \
                     AS v({OUTCOME_COLUMNS})), fin AS ({update} RETURNING operations.id), \
                     att AS (UPDATE operation_attempts SET finished_at = $1, outcome = v.outcome, \
                     error_class = v.error_class, error_code = v.error_code, message = v.last_error \
                     FROM v JOIN fin ON fin.id = v.id \
                     WHERE operation_attempts.operation_id = v.id AND operation_attempts.attempt = v.attempt \
                     AND operation_attempts.finished_at IS NULL \
                     RETURNING operation_attempts.operation_id, operation_attempts.started_at) \
                     SELECT fin.id, att.started_at FROM fin LEFT JOIN att ON att.operation_id = fin.id"
                );
                sqlx::query_as::<sqlx::Postgres, (OperationId, Option<Timestamp>)>(AssertSqlSafe(sql))
                    .bind(now)
                    .bind(worker)
                    .bind(ended.iter().map(|(op, _)| op.id.0).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(op, _)| op.attempt_count).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.status.as_str()).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.result.as_ref().map(Json)).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.error_class.map(ErrorClass::as_str)).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.error_code.as_deref()).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.message.as_deref()).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.next_attempt_at.map(|t| t.0)).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.status.is_terminal().then_some(now.0)).collect::<Vec<_>>())
                    .bind(ended.iter().map(|(_, o)| o.attempt.as_str()).collect::<Vec<_>>())
                    .fetch_all(&mut **c)
                    .await?
            }
            TxInner::Sqlite(c) => {
                let sql = format!(
                    "WITH v({OUTCOME_COLUMNS}) AS (VALUES {}) {update} RETURNING operations.id, NULL",
                    values(ended.len(), 10, 2)
                );
                let mut q = sqlx::query_as::<sqlx::Sqlite, (OperationId, Option<Timestamp>)>(AssertSqlSafe(sql))
                    .bind(now)
                    .bind(worker);
                for (op, o) in ended {
                    q = q
                        .bind(op.id)
                        .bind(op.attempt_count)
                        .bind(o.status.as_str())
                        .bind(o.result.as_ref().map(Json))
                        .bind(o.error_class.map(ErrorClass::as_str))
                        .bind(o.error_code.as_deref())
                        .bind(o.message.as_deref())
                        .bind(o.next_attempt_at)
                        .bind(o.status.is_terminal().then_some(now))
                        .bind(o.attempt.as_str());
                }
                q.fetch_all(&mut **c).await?
            }
        };
        let held: BTreeSet<OperationId> = rows.iter().map(|(id, _)| *id).collect();
        let mut started: HashMap<OperationId, Timestamp> =
            rows.into_iter().filter_map(|(id, at)| Some((id, at?))).collect();
        let closing: Vec<&(&Operation, &Outcome)> = ended.iter().filter(|(op, _)| held.contains(&op.id)).collect();
        if !postgres && !closing.is_empty() {
            started.extend(self.close_attempts(&closing).await?);
        }
        Ok((held, started))
    }

    /// SQLite: closes the attempt rows of `closing`; when each started.
    async fn close_attempts(&mut self, closing: &[&(&Operation, &Outcome)]) -> Result<Vec<(OperationId, Timestamp)>> {
        let now = self.now();
        let sql = format!(
            "WITH v(id, attempt, outcome, error_class, error_code, message) AS (VALUES {}) \
             UPDATE operation_attempts SET finished_at = $1, outcome = v.outcome, error_class = v.error_class, \
             error_code = v.error_code, message = v.message FROM v \
             WHERE operation_attempts.operation_id = v.id AND operation_attempts.attempt = v.attempt \
             AND operation_attempts.finished_at IS NULL \
             RETURNING operation_attempts.operation_id, operation_attempts.started_at",
            values(closing.len(), 6, 1)
        );
        Ok(on_tx!(self, |c, Db| {
            let mut q = sqlx::query_as::<Db, (OperationId, Timestamp)>(AssertSqlSafe(sql.as_str())).bind(now);
            for (op, o) in closing {
                q = q
                    .bind(op.id)
                    .bind(op.attempt_count)
                    .bind(o.attempt.as_str())
                    .bind(o.error_class.map(ErrorClass::as_str))
                    .bind(o.error_code.as_deref())
                    .bind(o.message.as_deref());
            }
            q.fetch_all(&mut *c).await
        })?)
    }
}

/// The columns of each ended attempt's row in [`Tx::close`]'s `VALUES`.
const OUTCOME_COLUMNS: &str =
    "id, attempt, status, result, error_class, error_code, last_error, next_attempt_at, finished_at, outcome";

/// The operations whose lease was still held (and so were recorded), and
/// when each of their closed attempts started.
type Closed = (BTreeSet<OperationId>, HashMap<OperationId, Timestamp>);
