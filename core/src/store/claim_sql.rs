//! The claim's SQL: which operations are runnable, the statement that takes
//! them (SQLite's, and PostgreSQL's as common table expressions that the
//! one-statement hand-over reuses), and what PostgreSQL's answers.

use super::{
    ledger::ClaimGroup,
    metrics::CounterArrays,
    rows::{OPERATION_COLUMNS, OperationRow},
};
use crate::{
    Timestamp,
    operation::{Operation, WorkClass},
};

/// How many operations each class may take, in [`WorkClass::ALL`]'s order
/// (0 for a class no group names): the limits of PostgreSQL's claim.
fn limits_by_class(groups: &[ClaimGroup]) -> Vec<usize> {
    WorkClass::ALL.iter().map(|class| groups.iter().filter(|g| g.class == *class).map(|g| g.limit).sum()).collect()
}

/// The runnable operations of queue `$1` in `class`, oldest first: queued or
/// due for a retry (`$4` is now), and not behind another operation on its VM
/// (FIFO per VM; one runs at a time). Both backends read it from the runnable
/// set's index `(queue, class, id)` — exactly the rows one class's slots may
/// take, in order, however long another class's backlog or the history — and
/// the active-per-VM set's.
///
/// `queue IN ($1, '')` and `ORDER BY queue, id` (no queue is named `''`) say
/// the same as `queue = $1 ... ORDER BY id`, but only the runnable index
/// gives that order. With `= $1` the queue drops out of the order, and
/// PostgreSQL's generic plan (kept for the connection's life), made while the
/// statistics saw a backlog of one class, walked the primary key from the
/// oldest operation past every finished one: 31 million index entries read in
/// a 20,000-operation drain.
///
/// `status IN ('queued', 'retrying')` is the runnable index's predicate word
/// for word, which SQLite needs to use a partial index (it does not prove it
/// from the `OR` after it); without it SQLite read every queued row through
/// the status index and sorted them, each claim.
fn runnable(class: WorkClass) -> String {
    // The class's name is the closed set's own literal, never input.
    format!(
        "SELECT o.id FROM operations o WHERE o.queue IN ($1, '') AND o.class = '{}' \
         AND o.status IN ('queued', 'retrying') AND (o.status = 'queued' OR (o.status = 'retrying' AND o.next_attempt_at <= $4)) \
         AND (o.vm IS NULL OR NOT EXISTS (SELECT 1 FROM operations o2 WHERE o2.host = o.host AND o2.vm = o.vm \
         AND o2.status IN ('queued', 'retrying', 'running') AND o2.vm IS NOT NULL \
         AND o2.id <> o.id AND (o2.status = 'running' OR o2.id < o.id))) ORDER BY o.queue, o.id",
        class.as_str()
    )
}

/// The claim: one candidate set per `(class, limit)` — the limit a number
/// or a parameter — MATERIALIZED so that each is read and locked exactly
/// once; and the `UPDATE` that marks them running.
fn claim_parts(postgres: bool, groups: &[(WorkClass, String)]) -> (String, String) {
    // PostgreSQL: workers of several processes share a queue; each skips the
    // rows another is claiming instead of queueing behind their locks.
    let lock = if postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let ctes: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(i, (class, limit))| format!("g{i} AS MATERIALIZED ({} LIMIT {limit} {lock})", runnable(*class)))
        .collect();
    let picked: Vec<String> = (0..groups.len()).map(|i| format!("SELECT id FROM g{i}")).collect();
    let picked = picked.join(" UNION ALL ");
    // PostgreSQL: the rows are found by their ids only (`= ANY` of the
    // candidates, an index condition on the primary key), and the candidates
    // are locked, so their status needs no second look. With `id IN (…) AND
    // status IN (…)`, a plan made while the ledger was near empty found the
    // rows to update through the runnable index — every queued row, each
    // claim — and matched them against the candidates (a backlog of 10,000
    // read in full by each claim of a few). SQLite has one writer and looks
    // each id up.
    let rows = if postgres {
        format!("id = ANY(ARRAY({picked}))")
    } else {
        format!("id IN ({picked}) AND status IN ('queued', 'retrying')")
    };
    let update = format!(
        "UPDATE operations SET status = 'running', attempt_count = attempt_count + 1, lease_owner = $2, \
         lease_expires_at = $3, started_at = COALESCE(started_at, $4), updated_at = $4 \
         WHERE {rows} RETURNING {OPERATION_COLUMNS}"
    );
    (ctes.join(", "), update)
}

/// SQLite's claim (its attempt rows are opened by a second statement).
pub(super) fn claim_sql_sqlite(groups: &[(WorkClass, String)]) -> String {
    let (ctes, update) = claim_parts(false, groups);
    format!("WITH {ctes} {update}")
}

/// PostgreSQL's claim as common table expressions to put in a `WITH`: the
/// candidates, `claimed` (the operations marked running, `$1` the queue,
/// `$2` the worker, `$3` the lease's end, `$4` now) and `opened` (their
/// attempt rows, `$5` the worker's host, `$6` the clock when the statement
/// was sent); each class's limit a parameter, `$7`, `$8`, … in
/// [`WorkClass::ALL`]'s order. Answer with [`CLAIMED_ROWS`].
///
/// An attempt never starts before the one it follows ended: a VM's previous
/// operation may have been closed by a transaction that committed after `$6`
/// was read but before this statement looked, so the start is at least the
/// latest end it can see (one probe of the finished index's newest entry).
pub(super) fn claim_ctes_postgres() -> String {
    let groups: Vec<(WorkClass, String)> =
        WorkClass::ALL.iter().enumerate().map(|(i, class)| (*class, format!("${}", i + 7))).collect();
    let (ctes, update) = claim_parts(true, &groups);
    format!(
        "{ctes}, claimed AS ({update}), opened AS (INSERT INTO operation_attempts \
         (operation_id, attempt, worker, host, started_at) SELECT c.id, c.attempt_count, $2, $5, \
         GREATEST($6, (SELECT MAX(finished_at) FROM operations WHERE finished_at IS NOT NULL)) FROM claimed c \
         RETURNING operation_id, started_at)"
    )
}

/// What a PostgreSQL claim answers: each operation claimed, as a
/// [`ClaimedRow`].
pub(super) const CLAIMED_ROWS: &str = "SELECT claimed.*, opened.started_at AS attempt_started_at \
     FROM claimed JOIN opened ON opened.operation_id = claimed.id";

/// The first parameter after the claim's limits.
pub(super) const AFTER_CLAIM_LIMITS: usize = 7 + WorkClass::ALL.len();

/// An operation a PostgreSQL claim took, and when its attempt started.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ClaimedRow {
    #[sqlx(flatten)]
    pub row: OperationRow,
    pub attempt_started_at: Timestamp,
}

impl From<ClaimedRow> for Operation {
    fn from(claimed: ClaimedRow) -> Self {
        Operation { attempt_started_at: Some(claimed.attempt_started_at), ..claimed.row.into() }
    }
}

/// How many operations each class may take, as PostgreSQL's claim binds them.
pub(super) fn claim_limits(groups: &[ClaimGroup]) -> impl Iterator<Item = i64> {
    limits_by_class(groups).into_iter().map(|limit| i64::try_from(limit).unwrap_or(i64::MAX))
}

/// PostgreSQL's claim names every class, each limit a parameter (0 reads
/// nothing): one text whatever the limits, planned once per connection (see
/// [`super::Store::begin_queue`]). It appends the transaction's counter increments too
/// (arrays after the limits, see `Tx::add_counters`). SQLite plans a
/// statement in microseconds, but runs a bound `LIMIT` slower (a claim
/// 0.8 ms against 0.25 ms): its claim names the classes with free slots and
/// their limits as numbers.
pub(super) static CLAIM_POSTGRES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let counted = CounterArrays::append_sql(AFTER_CLAIM_LIMITS);
    format!("WITH counted AS ({counted}), {} {CLAIMED_ROWS}", claim_ctes_postgres())
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_claims_its_own_limit_and_others_none() {
        let groups = [ClaimGroup::of_class(WorkClass::Alerts, 3), ClaimGroup::of_class(WorkClass::Vm, 2)];
        let limits = limits_by_class(&groups);
        assert_eq!(limits.len(), WorkClass::ALL.len());
        for (class, limit) in WorkClass::ALL.iter().zip(&limits) {
            let expected = match class {
                WorkClass::Alerts => 3,
                WorkClass::Vm => 2,
                _ => 0,
            };
            assert_eq!(*limit, expected, "{class:?}");
        }
    }
}
