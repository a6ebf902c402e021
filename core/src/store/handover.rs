//! A batch's outcomes and the next work for its slots in one statement: the
//! completer's common case on PostgreSQL. The same writes as recording the
//! outcomes and then claiming in one transaction (see `Tx::record_outcomes`
//! and `Tx::claim`), as one statement that is its own transaction: one round
//! trip where that transaction took four (`BEGIN`, the close, the claim,
//! `COMMIT`).
//!
//! A batch is recorded whole or not at all: if another worker or the reaper
//! took one of its operations meanwhile, the statement stops and undoes
//! itself ([`Handover::LeaseLost`]), and the caller records the batch the
//! transaction's way, which counts each outcome alone. So the statement
//! appends the batch's counter increments summed per series (a few rows),
//! not one row per attempt filtered by what it recorded.
//!
//! One snapshot serves both halves, so the claim does not see what the close
//! wrote: the operation behind one just closed on the same VM is taken by the
//! queue's next claim, not this one (its slot goes back, and the close
//! announced the queue).

use sqlx::{AssertSqlSafe, FromRow as _, Row as _};

use super::{
    Backend, Store,
    claim_sql::{AFTER_CLAIM_LIMITS, CLAIMED_ROWS, ClaimedRow, claim_ctes_postgres, claim_limits},
    metrics::CounterArrays,
    outcomes::{OUTCOME_ARRAYS, OutcomeArrays, close_ctes_postgres, queues_to_wake},
};
use crate::{
    OperationId, Result, Timestamp, metrics::Delta, operation::Operation, outcome::Outcome, store::ClaimGroup,
};

/// What to claim next, and as whom.
#[derive(Debug, Clone, Copy)]
pub struct NextClaim<'a> {
    pub queue: &'a str,
    pub groups: &'a [ClaimGroup],
    pub worker: &'a str,
    pub host: &'a str,
    pub lease: std::time::Duration,
}

/// What [`Store::record_and_claim`] did.
#[derive(Debug)]
pub enum Handover {
    /// Every outcome was recorded, and these operations claimed, oldest first.
    Done { claimed: Vec<Operation> },
    /// Another worker claimed an operation of the same VM at the same
    /// moment: nothing was written.
    Contended,
    /// An operation of the batch was no longer this worker's (taken back, or
    /// cancelled): nothing was written.
    LeaseLost,
}

/// The statement: the close, the batch's counter increments and the claim;
/// answers each operation claimed, or one row of nulls if none was. Stops
/// with [`LEASE_LOST`] unless it recorded every outcome it was sent (`whole`
/// is read by no one: answering it is what runs the check).
static RECORD_AND_CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let counters = AFTER_CLAIM_LIMITS + OUTCOME_ARRAYS;
    format!(
        "WITH {}, counted AS ({}), {} \
         SELECT hyperfleet_every_lease_held((SELECT COUNT(*) FROM fin), (SELECT COUNT(*) FROM v)) AS whole, c.* \
         FROM (SELECT) AS one LEFT JOIN ({CLAIMED_ROWS}) AS c ON true",
        close_ctes_postgres("$4", "$2", AFTER_CLAIM_LIMITS),
        CounterArrays::append_sql(counters),
        claim_ctes_postgres(),
    )
});

/// The SQLSTATE of `hyperfleet_every_lease_held` when a lease was lost.
const LEASE_LOST: &str = "HF001";

impl Store {
    /// PostgreSQL: records each `(op, outcome)` (closed at `now`, the
    /// instant the outcomes were decided with), appends the batch's
    /// `counters`, and claims the next work — in one statement, one commit;
    /// or nothing, unless `claim.worker` still holds every lease. Announces
    /// the queues where a retry or the next operation on a VM now waits.
    pub async fn record_and_claim(
        &self,
        ended: &[(&Operation, &Outcome)],
        counters: &[Delta],
        now: Timestamp,
        claim: NextClaim<'_>,
    ) -> Result<Handover> {
        let Backend::Postgres(_, connections) = &self.backend else {
            return Err(crate::Error::internal("one-statement hand-over is PostgreSQL's"));
        };
        let started = self.clock.now();
        let mut query = sqlx::query(AssertSqlSafe(RECORD_AND_CLAIM.as_str()))
            .bind(claim.queue)
            .bind(claim.worker)
            .bind(now.plus(claim.lease))
            .bind(now)
            .bind(claim.host)
            .bind(started);
        for limit in claim_limits(claim.groups) {
            query = query.bind(limit);
        }
        let counters = CounterArrays::of(counters);
        let query =
            OutcomeArrays::of(ended, now).bind(query).bind(counters.names).bind(counters.labels).bind(counters.values);
        let mut conn = connections.one_statement().await?;
        let answer = query.fetch_all(&mut *conn).await;
        conn.done(matches!(&answer, Ok(_) | Err(sqlx::Error::Database(_))));
        let rows = match answer {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(Handover::Contended),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(LEASE_LOST) => {
                return Ok(Handover::LeaseLost);
            }
            Err(e) => return Err(e.into()),
        };
        // A row without an id claimed nothing.
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<OperationId>, _>("id")?.is_some() {
                claimed.push(Operation::from(ClaimedRow::from_row(row)?));
            }
        }
        claimed.sort_by_key(|op| op.id);
        let held = ended.iter().map(|(op, _)| op.id).collect();
        for queue in queues_to_wake(ended, &held) {
            self.wakes.announce(&queue);
        }
        Ok(Handover::Done { claimed })
    }
}
