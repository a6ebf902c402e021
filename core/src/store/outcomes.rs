//! Recording how attempts ended, many in one go: one statement moves every
//! operation whose lease the worker still holds and closes their attempt
//! rows (two on SQLite). What a completer commits in one transaction.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AssertSqlSafe, Row as _, types::Json};

use super::tx::{TxInner, on_tx};
use crate::{
    OperationId, Result, Timestamp,
    operation::{ErrorClass, Operation},
    outcome::Outcome,
};

/// The queues that recording `ended` gives work to look at (see
/// [`Outcome::wakes_its_queue`]), of the operations among `held` (those
/// actually recorded).
pub(super) fn queues_to_wake(ended: &[(&Operation, &Outcome)], held: &BTreeSet<OperationId>) -> BTreeSet<String> {
    ended
        .iter()
        .filter(|(op, o)| held.contains(&op.id) && o.wakes_its_queue(op.vm.as_deref()))
        .map(|(op, _)| crate::queue::queue_for(op.host.as_deref()))
        .collect()
}

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
        for queue in queues_to_wake(ended, &held) {
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
        let rows: Vec<(OperationId, Option<Timestamp>)> = match &mut self.inner {
            // One text whatever the batch's size (arrays): prepared and planned once per connection.
            TxInner::Postgres(c) => {
                let query = sqlx::query(AssertSqlSafe(CLOSE_POSTGRES.as_str())).bind(now).bind(worker);
                let query = OutcomeArrays::of(ended, now).bind(query);
                let rows = query.fetch_all(&mut **c).await?;
                rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?
            }
            TxInner::Sqlite(c) => {
                let sql = format!(
                    "WITH v({OUTCOME_COLUMNS}) AS (VALUES {}) {} RETURNING operations.id, NULL",
                    values(ended.len(), 10, 2),
                    close_update("$1", "$2")
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

/// The `UPDATE` that moves each operation of `v` whose lease `worker` still
/// holds (`now` the instant; both placeholders).
fn close_update(now: &str, worker: &str) -> String {
    format!(
        "UPDATE operations SET status = v.status, result = v.result, error_class = v.error_class, \
         error_code = v.error_code, last_error = v.last_error, next_attempt_at = v.next_attempt_at, \
         finished_at = v.finished_at, lease_owner = NULL, lease_expires_at = NULL, updated_at = {now} \
         FROM v WHERE operations.id = v.id AND operations.status = 'running' AND operations.lease_owner = {worker}"
    )
}

/// PostgreSQL's close as common table expressions to put in a `WITH`: `v`
/// (the outcomes, [`OutcomeArrays`] bound from `$first` on), `fin` (the
/// operations moved, each id) and `att` (their attempt rows closed, each
/// `operation_id` and `started_at`); `now` and `worker` are placeholders.
pub(super) fn close_ctes_postgres(now: &str, worker: &str, first: usize) -> String {
    let arrays = ["uuid", "int4", "text", "jsonb", "text", "text", "text", "timestamptz", "timestamptz", "text"];
    let arrays: Vec<String> = arrays.iter().enumerate().map(|(i, t)| format!("${}::{t}[]", first + i)).collect();
    format!(
        "v AS (SELECT * FROM unnest({}) AS v({OUTCOME_COLUMNS})), fin AS ({} RETURNING operations.id), \
         att AS (UPDATE operation_attempts SET finished_at = {now}, outcome = v.outcome, \
         error_class = v.error_class, error_code = v.error_code, message = v.last_error \
         FROM v JOIN fin ON fin.id = v.id \
         WHERE operation_attempts.operation_id = v.id AND operation_attempts.attempt = v.attempt \
         AND operation_attempts.finished_at IS NULL \
         RETURNING operation_attempts.operation_id, operation_attempts.started_at)",
        arrays.join(", "),
        close_update(now, worker)
    )
}

/// The outcomes of a batch as PostgreSQL's close binds them: one array per
/// column of [`OUTCOME_COLUMNS`], in its order.
pub(super) struct OutcomeArrays<'a> {
    ids: Vec<uuid::Uuid>,
    attempts: Vec<i32>,
    statuses: Vec<&'static str>,
    results: Vec<Option<Json<&'a serde_json::Value>>>,
    classes: Vec<Option<&'static str>>,
    codes: Vec<Option<&'a str>>,
    messages: Vec<Option<&'a str>>,
    next_attempts: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    finished: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    outcomes: Vec<&'static str>,
}

impl<'a> OutcomeArrays<'a> {
    /// The arrays of `ended`, closed at `now`.
    pub(super) fn of(ended: &[(&Operation, &'a Outcome)], now: Timestamp) -> Self {
        let outcomes = || ended.iter().map(|(_, o)| *o);
        Self {
            ids: ended.iter().map(|(op, _)| op.id.0).collect(),
            attempts: ended.iter().map(|(op, _)| op.attempt_count).collect(),
            statuses: outcomes().map(|o| o.status.as_str()).collect(),
            results: outcomes().map(|o| o.result.as_ref().map(Json)).collect(),
            classes: outcomes().map(|o| o.error_class.map(ErrorClass::as_str)).collect(),
            codes: outcomes().map(|o| o.error_code.as_deref()).collect(),
            messages: outcomes().map(|o| o.message.as_deref()).collect(),
            next_attempts: outcomes().map(|o| o.next_attempt_at.map(|t| t.0)).collect(),
            finished: outcomes().map(|o| o.status.is_terminal().then_some(now.0)).collect(),
            outcomes: outcomes().map(|o| o.attempt.as_str()).collect(),
        }
    }

    /// Binds the arrays, in order, after what `query` binds already.
    pub(super) fn bind<'q>(self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(self.ids)
            .bind(self.attempts)
            .bind(self.statuses)
            .bind(self.results)
            .bind(self.classes)
            .bind(self.codes)
            .bind(self.messages)
            .bind(self.next_attempts)
            .bind(self.finished)
            .bind(self.outcomes)
    }
}

/// PostgreSQL's close (`$1` now, `$2` the worker, the arrays from `$3`):
/// each id moved and when its attempt started. Built once.
static CLOSE_POSTGRES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH {} SELECT fin.id, att.started_at FROM fin LEFT JOIN att ON att.operation_id = fin.id",
        close_ctes_postgres("$1", "$2", 3)
    )
});

/// How many parameters [`OutcomeArrays`] binds.
pub(super) const OUTCOME_ARRAYS: usize = 10;

/// A PostgreSQL statement being bound.
pub(super) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The columns of each ended attempt's row in [`Tx::close`]'s `VALUES`.
const OUTCOME_COLUMNS: &str =
    "id, attempt, status, result, error_class, error_code, last_error, next_attempt_at, finished_at, outcome";

/// The operations whose lease was still held (and so were recorded), and
/// when each of their closed attempts started.
type Closed = (BTreeSet<OperationId>, HashMap<OperationId, Timestamp>);
