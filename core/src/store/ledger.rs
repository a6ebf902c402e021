//! The worker's side of the ledger: claim an operation, keep its lease, finish
//! it, and recover operations whose worker disappeared. Every transition is a
//! conditional UPDATE, so concurrent workers and reapers cannot both win.

use sqlx::AssertSqlSafe;
use std::time::Duration;

use serde_json::Value;
use sqlx::types::Json;

use super::{
    Store,
    claim_sql::{CLAIM_POSTGRES, ClaimedRow, claim_limits, claim_sql_sqlite},
    metrics::CounterArrays,
    read_db,
    rows::OperationRow,
    tx::{AttemptEnd, LedgerTx, TxInner, on_tx},
    with_db,
};
use crate::{
    OperationId, Result, Timestamp,
    operation::{ErrorClass, Operation, WorkClass},
    outcome::Outcome,
};

/// What a worker got when it asked its queue for work.
#[derive(Debug)]
pub enum Claim {
    /// Now running under this worker's lease, each as attempt
    /// `operation.attempt_count`; oldest first, never empty.
    Claimed(Vec<Operation>),
    /// Nothing runnable now; the earliest waiting retry is due then, if any.
    Idle(Option<Timestamp>),
    /// Another worker took the same operation at the same moment: ask again.
    Contended,
}

/// Up to `limit` operations of one class: what that class's free slots can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimGroup {
    pub class: WorkClass,
    pub limit: usize,
}

impl ClaimGroup {
    /// Up to `limit` operations of any kind of `class`.
    pub fn of_class(class: WorkClass, limit: usize) -> Self {
        Self { class, limit }
    }
}

/// What the slots of attempts that ended go to next: per queue (in the order
/// first seen), one group per class with as many operations as the ended
/// attempts of that queue and class held slots. `ended` names each attempt's
/// queue and class.
pub fn claims_after<'a>(ended: impl IntoIterator<Item = (&'a str, WorkClass)>) -> Vec<(String, Vec<ClaimGroup>)> {
    let mut queues: Vec<(String, Vec<(WorkClass, usize)>)> = Vec::new();
    for (queue, class) in ended {
        let classes = match queues.iter_mut().find(|(q, _)| q == queue) {
            Some((_, classes)) => classes,
            None => {
                queues.push((queue.to_owned(), Vec::new()));
                &mut queues.last_mut().expect("just pushed").1
            }
        };
        match classes.iter_mut().find(|(c, _)| *c == class) {
            Some((_, n)) => *n += 1,
            None => classes.push((class, 1)),
        }
    }
    queues
        .into_iter()
        .map(|(queue, classes)| (queue, classes.into_iter().map(|(c, n)| ClaimGroup::of_class(c, n)).collect()))
        .collect()
}

/// attempt_count, max_attempts, queue, host, vm, lease_owner, kind, params
type LeaseRow =
    (i32, i32, String, Option<String>, Option<String>, Option<String>, crate::operation::OperationKind, Json<Value>);

impl Store {
    /// Claims for `worker` on `host` up to each group's limit of the oldest
    /// runnable operations of `queue`, in one statement: marks them running
    /// under a lease and opens their attempt rows, in one transaction.
    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn claim(
        &self,
        queue: &str,
        groups: &[ClaimGroup],
        worker: &str,
        host: &str,
        lease: Duration,
    ) -> Result<Claim> {
        if groups.iter().all(|g| g.limit == 0) {
            return Ok(Claim::Idle(None));
        }
        let mut tx = self.begin_queue().await?;
        let claimed = match tx.claim(queue, groups, worker, host, lease).await? {
            Some(claimed) => claimed,
            None => return Ok(Claim::Contended),
        };
        tx.commit().await?;
        if !claimed.is_empty() {
            return Ok(Claim::Claimed(claimed));
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

    /// Extends the leases `worker` holds on `ids`, in one statement; returns
    /// each operation still held, with whether a cancel was requested. An id
    /// missing from the answer lost its lease (the reaper took it back).
    pub async fn renew_leases(
        &self,
        ids: &[OperationId],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<(OperationId, bool)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE operations SET lease_expires_at = $2 WHERE lease_owner = $1 AND status = 'running' \
             AND id IN ({}) RETURNING id, cancel_requested",
            list.join(", ")
        );
        Ok(with_db!(self, |pool, Db| {
            let mut q = sqlx::query_as::<Db, (OperationId, bool)>(AssertSqlSafe(sql.as_str()))
                .bind(worker)
                .bind(now.plus(lease));
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })?)
    }

    /// Running operations whose lease expired (their worker died or hung), oldest first.
    pub async fn expired_leases(&self, limit: i64) -> Result<Vec<OperationId>> {
        let now = self.now();
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, OperationId>(
                "SELECT id FROM operations WHERE status = 'running' AND lease_expires_at < $1 ORDER BY id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }
}

/// SQLite: opens the attempt rows of the operations just claimed, in one
/// statement (PostgreSQL's claim opens them itself, see `claim_sql`).
async fn open_attempts(
    c: &mut sqlx::SqliteConnection,
    rows: &[Operation],
    worker: &str,
    host: &str,
    started: Timestamp,
) -> Result<()> {
    let values: Vec<String> =
        (0..rows.len()).map(|i| format!("(${}, ${}, $1, $2, $3)", 2 * i + 4, 2 * i + 5)).collect();
    let sql = format!(
        "INSERT INTO operation_attempts (operation_id, attempt, worker, host, started_at) VALUES {}",
        values.join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(worker).bind(host).bind(started);
    for row in rows {
        q = q.bind(row.id).bind(row.attempt_count);
    }
    q.execute(&mut *c).await?;
    Ok(())
}

/// A running operation as taken back from its worker.
#[derive(Debug, Clone)]
pub struct TakenBack {
    pub attempt: i32,
    pub max_attempts: i32,
    pub queue: String,
    pub host: Option<String>,
    pub vm: Option<String>,
    pub lease_owner: Option<String>,
    pub kind: crate::operation::OperationKind,
    pub params: Value,
}

impl super::Tx {
    /// Claims, inside this transaction, up to each group's limit of the oldest
    /// runnable operations of `queue` for `worker` on `host`, in one statement,
    /// and opens their attempt rows; oldest first. `None`: a concurrent claim
    /// won one of the same VMs (the one-running-per-VM index) and nothing was
    /// claimed; on PostgreSQL the transaction is then aborted (roll it back).
    pub async fn claim(
        &mut self,
        queue: &str,
        groups: &[ClaimGroup],
        worker: &str,
        host: &str,
        lease: Duration,
    ) -> Result<Option<Vec<Operation>>> {
        if groups.iter().all(|g| g.limit == 0) {
            return Ok(Some(Vec::new()));
        }
        let now = self.now();
        let postgres = self.is_postgres();
        let claimed: std::result::Result<Vec<Operation>, sqlx::Error> = match &mut self.inner {
            // Opens the attempts and writes the counters in the claim itself (see `claim_ctes_postgres`).
            TxInner::Postgres(c) => {
                let started = self.clock.now();
                let counters = CounterArrays::of(&self.counters);
                let mut q = sqlx::query_as::<sqlx::Postgres, ClaimedRow>(AssertSqlSafe(CLAIM_POSTGRES.as_str()))
                    .bind(queue)
                    .bind(worker)
                    .bind(now.plus(lease))
                    .bind(now)
                    .bind(host)
                    .bind(started);
                for limit in claim_limits(groups) {
                    q = q.bind(limit);
                }
                q.bind(counters.names)
                    .bind(counters.labels)
                    .bind(counters.values)
                    .fetch_all(&mut **c)
                    .await
                    .map(|rows| rows.into_iter().map(Operation::from).collect())
            }
            TxInner::Sqlite(c) => {
                let groups: Vec<(WorkClass, String)> =
                    groups.iter().filter(|g| g.limit > 0).map(|g| (g.class, g.limit.to_string())).collect();
                sqlx::query_as::<sqlx::Sqlite, OperationRow>(AssertSqlSafe(claim_sql_sqlite(&groups)))
                    .bind(queue)
                    .bind(worker)
                    .bind(now.plus(lease))
                    .bind(now)
                    .fetch_all(&mut **c)
                    .await
                    .map(|rows| rows.into_iter().map(Operation::from).collect())
            }
        };
        let mut claimed = match claimed {
            Ok(claimed) => claimed,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if postgres {
            self.counters.clear();
        }
        claimed.sort_by_key(|op| op.id);
        if let TxInner::Sqlite(c) = &mut self.inner
            && !claimed.is_empty()
        {
            // Read after the claim saw the VM's previous operation finished (its
            // end was stamped before that commit, or earlier in this
            // transaction): an attempt never starts before the one it follows ended.
            let started = self.clock.now();
            open_attempts(c, &claimed, worker, host, started).await?;
            for op in &mut claimed {
                op.attempt_started_at = Some(started);
            }
        }
        Ok(Some(claimed))
    }

    /// Takes running operation `id` from `owner` (a stopping worker handing it
    /// back) or, with `None`, from whoever let its lease expire.
    pub async fn take_back(&mut self, id: OperationId, owner: Option<&str>) -> Result<Option<TakenBack>> {
        let now = self.now();
        let row: Option<LeaseRow> = on_tx!(self, |c, Db| {
            sqlx::query_as::<Db, LeaseRow>(
                "SELECT attempt_count, max_attempts, queue, host, vm, lease_owner, kind, params FROM operations \
                 WHERE id = $1 AND status = 'running' AND (lease_owner = $2 OR ($2 IS NULL AND lease_expires_at < $3))",
            )
            .bind(id)
            .bind(owner)
            .bind(now)
            .fetch_optional(&mut *c)
            .await
        })?;
        let Some((attempt, max_attempts, queue, host, vm, lease_owner, kind, params)) = row else { return Ok(None) };
        Ok(Some(TakenBack { attempt, max_attempts, queue, host, vm, lease_owner, kind, params: params.0 }))
    }

    /// Records what taking `id` back decided (see [`Outcome::abandoned`]);
    /// returns when the abandoned attempt started.
    pub async fn record_abandoned(
        &mut self,
        id: OperationId,
        taken: &TakenBack,
        outcome: &Outcome,
    ) -> Result<Timestamp> {
        let now = self.now();
        let finished_at = outcome.status.is_terminal().then_some(now);
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "UPDATE operations SET status = $2, error_class = 'abandoned', error_code = 'abandoned', last_error = $3, \
                 next_attempt_at = $4, finished_at = $5, lease_owner = NULL, lease_expires_at = NULL, updated_at = $6 \
                 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(outcome.status.as_str())
            .bind(outcome.message.as_deref())
            .bind(outcome.next_attempt_at)
            .bind(finished_at)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let started = self.close_attempt(id, taken.attempt, outcome).await?;
        if outcome.wakes_its_queue(taken.vm.as_deref()) {
            self.announce(&taken.queue);
        }
        Ok(started.unwrap_or(now))
    }

    async fn close_attempt(&mut self, id: OperationId, attempt: i32, outcome: &Outcome) -> Result<Option<Timestamp>> {
        let now = self.now();
        let end = AttemptEnd {
            outcome: outcome.attempt,
            class: outcome.error_class.map(ErrorClass::as_str),
            code: outcome.error_code.as_deref(),
            message: outcome.message.as_deref(),
        };
        on_tx!(self, |c, Db| c.close_attempt(id, attempt, now, end).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_slots_go_to_their_own_queue_and_class() {
        let (host, shared) = ("hyperfleet.host.hv1", "hyperfleet.shared");
        let ended =
            [(host, WorkClass::Vm), (shared, WorkClass::Health), (host, WorkClass::Vm), (host, WorkClass::Alerts)];
        let claims = claims_after(ended);
        assert_eq!(
            claims,
            vec![
                (
                    host.to_owned(),
                    vec![ClaimGroup::of_class(WorkClass::Vm, 2), ClaimGroup::of_class(WorkClass::Alerts, 1)]
                ),
                (shared.to_owned(), vec![ClaimGroup::of_class(WorkClass::Health, 1)]),
            ]
        );
        assert!(claims_after([]).is_empty(), "nothing ended, nothing to claim");
    }
}
