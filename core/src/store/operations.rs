//! Submitting and reading operations: what the API calls.

use sqlx::AssertSqlSafe;

use super::{
    Store,
    group_commit::Submit,
    read_db,
    rows::{ATTEMPT_COLUMNS, AttemptRow, OPERATION_COLUMNS, OperationRow},
    with_db,
};
use crate::{
    Error, OperationId, Result, Timestamp,
    operation::{Attempt, ErrorClass, NewOperation, Operation, OperationKind, OperationStatus},
    queue::queue_for,
};

/// The answer to a submit: the operation, and whether it was created now or
/// replayed from an earlier request with the same idempotency key.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub operation: Operation,
    pub replayed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct OperationFilter {
    pub status: Option<OperationStatus>,
    pub kind: Option<OperationKind>,
    pub host: Option<String>,
    pub vm: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only operations whose last error is of this class.
    pub error_class: Option<ErrorClass>,
    /// Only operations requested by this principal (a token's name, `schedule:NAME`, …).
    pub requested_by: Option<String>,
    /// Only operations whose last error contains this text (case ignored for ASCII).
    pub error_text: Option<String>,
    /// Return operations older than this one (the previous page's last id).
    pub cursor: Option<OperationId>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct OperationPage {
    pub items: Vec<Operation>,
    pub next_cursor: Option<OperationId>,
}

enum Param {
    Text(String),
    Time(Timestamp),
    Id(OperationId),
}

/// `%text%` for `LIKE … ESCAPE '\'`: the text's own `%`, `_` and `\` match
/// themselves; lowered like the column it is compared with.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The finished history, as the predicate of every index that holds it
/// alone (word for word: SQLite uses a partial index only for a query that
/// repeats its predicate).
const HISTORY: &str = "status IN ('succeeded', 'failed', 'cancelled')";

/// The parts of the ledger a list with this status filter reads, each one
/// index range newest first: the finished history (through the index of
/// whichever filter is given — `kind`, `host`, `vm`, … — each of which
/// holds finished operations only, so that a claim or a submit writes none
/// of them) and each active status (through `(status, id)`).
fn list_parts(status: Option<OperationStatus>) -> Vec<String> {
    let active = |s: OperationStatus| format!("status = '{}'", s.as_str());
    match status {
        Some(s) if s.is_terminal() => vec![format!("{} AND {HISTORY}", active(s))],
        Some(s) => vec![active(s)],
        None => std::iter::once(HISTORY.to_owned())
            .chain(OperationStatus::ALL.iter().filter(|s| !s.is_terminal()).map(|s| active(*s)))
            .collect(),
    }
}

/// Up to `rows` operations, newest first, of the union of `parts`, each
/// filtered by every clause and read newest first up to `rows` itself.
fn list_sql(parts: &[String], clauses: &[String], rows: u32) -> String {
    let select = |part: &String| {
        let filters: String = clauses.iter().map(|c| format!(" AND {c}")).collect();
        format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE {part}{filters} ORDER BY id DESC LIMIT {rows}")
    };
    match parts {
        [one] => select(one),
        parts => {
            let union: Vec<String> =
                parts.iter().enumerate().map(|(i, part)| format!("SELECT * FROM ({}) AS p{i}", select(part))).collect();
            format!("{} ORDER BY id DESC LIMIT {rows}", union.join(" UNION ALL "))
        }
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Records the operation and enqueues its first job in one transaction.
    #[tracing::instrument(skip(self, new), fields(kind = new.kind.as_str(), vm = ?new.vm))]
    pub async fn submit(&self, new: NewOperation) -> Result<Submitted> {
        self.submit_linked(new, None).await
    }

    pub(crate) async fn submit_linked(&self, new: NewOperation, retry_of: Option<OperationId>) -> Result<Submitted> {
        let hash = new.request_hash();
        if let Some(existing) = self.replay(&new, &hash).await? {
            return Ok(existing);
        }
        match self.insert_operation(&new, &hash, retry_of).await {
            Ok(operation) => Ok(Submitted { operation, replayed: false }),
            // A concurrent request with the same key won the race: answer as a replay.
            Err(e) if is_unique_violation(&e) && new.idempotency_key.is_some() => {
                self.replay(&new, &hash).await?.ok_or_else(|| Error::internal(e))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn replay(&self, new: &NewOperation, hash: &str) -> Result<Option<Submitted>> {
        let Some(key) = &new.idempotency_key else { return Ok(None) };
        let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE idempotency_key = $1");
        let row: Option<OperationRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, OperationRow>(AssertSqlSafe(sql.as_str())).bind(key).fetch_optional(pool).await
        })?;
        match row {
            None => Ok(None),
            Some(row) if row.request_hash == hash => Ok(Some(Submitted { operation: row.into(), replayed: true })),
            Some(row) => Err(Error::conflict(
                "idempotency_conflict",
                format!(
                    "Idempotency-Key `{}` was already used for a different request (operation {})",
                    crate::operation::unscoped_idempotency_key(&new.requested_by, key.clone()),
                    row.id
                ),
            )),
        }
    }

    /// Stores the operation through the group committer (see [`super::group_commit`]).
    async fn insert_operation(
        &self,
        new: &NewOperation,
        hash: &str,
        retry_of: Option<OperationId>,
    ) -> std::result::Result<Operation, sqlx::Error> {
        let queue = queue_for(new.host.as_deref());
        let submit = Submit { new: new.clone(), hash: hash.to_owned(), queue, retry_of, now: self.now() };
        self.submits.insert(&self.backend, &self.wakes, &self.clock, submit).await
    }

    pub async fn operation(&self, id: OperationId) -> Result<Operation> {
        let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1");
        let row: Option<OperationRow> =
            read_db!(self, |pool, Db| sqlx::query_as::<Db, OperationRow>(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await)?;
        row.map(Into::into).ok_or_else(|| Error::not_found("operation_not_found", format!("operation {id}")))
    }

    pub async fn attempts(&self, id: OperationId) -> Result<Vec<Attempt>> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM operation_attempts WHERE operation_id = $1 ORDER BY attempt");
        let rows: Vec<AttemptRow> =
            read_db!(self, |pool, Db| sqlx::query_as::<Db, AttemptRow>(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Newest first, keyset-paginated on the time-ordered id. The finished
    /// history and each active status are read apart and merged (see
    /// [`list_parts`]): the filters' indexes hold finished operations only.
    pub async fn list_operations(&self, filter: &OperationFilter) -> Result<OperationPage> {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        let mut push = |clause: &str, p: Param| {
            params.push(p);
            clauses.push(clause.replace('?', &format!("${}", params.len())));
        };
        if let Some(k) = filter.kind {
            push("kind = ?", Param::Text(k.as_str().into()));
        }
        if let Some(h) = &filter.host {
            push("host = ?", Param::Text(h.clone()));
        }
        if let Some(v) = &filter.vm {
            push("vm = ?", Param::Text(v.clone()));
        }
        if let Some(t) = filter.since {
            push("created_at >= ?", Param::Time(t));
        }
        if let Some(t) = filter.until {
            push("created_at < ?", Param::Time(t));
        }
        if let Some(c) = filter.error_class {
            push("error_class = ?", Param::Text(c.as_str().into()));
        }
        if let Some(r) = &filter.requested_by {
            push("requested_by = ?", Param::Text(r.clone()));
        }
        if let Some(t) = &filter.error_text {
            push("LOWER(last_error) LIKE ? ESCAPE '\\'", Param::Text(like_pattern(t)));
        }
        if let Some(c) = filter.cursor {
            push("id < ?", Param::Id(c));
        }
        let limit = filter.limit.clamp(1, 500);
        let sql = list_sql(&list_parts(filter.status), &clauses, limit + 1);
        // Not a cached prepared statement: PostgreSQL switches a cached one
        // to a generic plan after five runs, and the generic plan for
        // `status = $1` walks the whole ledger backwards by id looking for a
        // status that has no rows (1M rows: 0.4 s instead of 0.1 ms).
        let mut rows: Vec<OperationRow> = read_db!(self, |pool, Db| {
            let mut q = sqlx::query_as::<Db, OperationRow>(AssertSqlSafe(sql.as_str())).persistent(false);
            for p in params {
                q = match p {
                    Param::Text(t) => q.bind(t),
                    Param::Time(t) => q.bind(t),
                    Param::Id(i) => q.bind(i),
                };
            }
            q.fetch_all(pool).await
        })?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(OperationPage { items: rows.into_iter().map(Into::into).collect(), next_cursor })
    }

    /// Queued or retrying → cancelled now; running → cancel requested, honoured
    /// by the worker at its next safe point.
    #[tracing::instrument(skip(self))]
    pub async fn cancel(&self, id: OperationId, by: &str) -> Result<Operation> {
        let now = self.now();
        let cancelled = with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let row: Option<(Option<String>, Option<String>)> = sqlx::query_as::<Db, (Option<String>, Option<String>)>(
                "UPDATE operations SET status = 'cancelled', finished_at = $2, updated_at = $2, cancelled_by = $3, \
                 error_code = 'cancelled', last_error = 'cancelled before it ran to completion', next_attempt_at = NULL \
                 WHERE id = $1 AND status IN ('queued', 'retrying') RETURNING host, vm",
            )
            .bind(id)
            .bind(now)
            .bind(by)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, Error>(row)
        })?;
        // The next operation on this VM waits in its host's queue.
        if let Some((Some(host), Some(_))) = &cancelled {
            self.wakes.announce(&crate::queue::host_queue(host));
        }
        let cancelled = cancelled.is_some();
        if cancelled {
            self.wakes.notify_all();
        } else {
            with_db!(self, |pool, Db| {
                sqlx::query::<Db>(
                    "UPDATE operations SET cancel_requested = TRUE, cancelled_by = COALESCE(cancelled_by, $3), \
                     updated_at = $2 WHERE id = $1 AND status = 'running'",
                )
                .bind(id)
                .bind(now)
                .bind(by)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
        let op = self.operation(id).await?;
        if op.status.is_terminal() && !cancelled && op.status != OperationStatus::Cancelled {
            return Err(Error::conflict(
                "operation_finished",
                format!("operation {id} already finished as {}", op.status),
            ));
        }
        Ok(op)
    }

    /// A failed or cancelled operation is retried as a new operation linked to it.
    #[tracing::instrument(skip(self))]
    pub async fn retry(&self, id: OperationId, requested_by: &str, request_id: Option<String>) -> Result<Operation> {
        let old = self.operation(id).await?;
        if !matches!(old.status, OperationStatus::Failed | OperationStatus::Cancelled) {
            return Err(Error::conflict(
                "operation_not_retryable",
                format!("operation {id} is {}; only failed or cancelled operations can be retried", old.status),
            ));
        }
        let new = NewOperation {
            kind: old.kind,
            host: old.host.clone(),
            vm: old.vm.clone(),
            params: old.params.clone(),
            requested_by: requested_by.to_owned(),
            request_id,
            idempotency_key: None,
            max_attempts: old.max_attempts,
        };
        Ok(self.submit_linked(new, Some(id)).await?.operation)
    }
}

impl Store {
    /// Per queue, since when its oldest runnable work waits (queued, or a retry due by `now`).
    pub async fn oldest_runnable(&self, now: Timestamp) -> Result<Vec<(String, Timestamp)>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, Timestamp)>(
                "SELECT queue, MIN(COALESCE(next_attempt_at, created_at)) FROM operations \
                 WHERE status = 'queued' OR (status = 'retrying' AND next_attempt_at <= $1) GROUP BY queue",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_the_history_and_each_active_status_apart() {
        let terminal: Vec<String> =
            OperationStatus::ALL.iter().filter(|s| s.is_terminal()).map(|s| format!("'{}'", s.as_str())).collect();
        assert_eq!(HISTORY, format!("status IN ({})", terminal.join(", ")), "the history is what has ended");
        let every = list_parts(None);
        assert_eq!(every, [HISTORY, "status = 'queued'", "status = 'running'", "status = 'retrying'"]);
        // A finished status repeats the history's predicate (SQLite's partial indexes need it).
        assert_eq!(list_parts(Some(OperationStatus::Failed)), [format!("status = 'failed' AND {HISTORY}")]);
        assert_eq!(list_parts(Some(OperationStatus::Running)), ["status = 'running'"]);
        let sql = list_sql(&every, &["kind = $1".to_owned()], 51);
        assert_eq!(sql.matches("kind = $1 ORDER BY id DESC LIMIT 51").count(), 4, "{sql}");
        assert_eq!(sql.matches(" UNION ALL ").count(), 3, "{sql}");
        let one = list_sql(&list_parts(Some(OperationStatus::Queued)), &[], 11);
        assert!(!one.contains("UNION"), "{one}");
    }
}
