//! A batch's outcomes and the next work for its slots in one statement: the
//! completer's common case on PostgreSQL. The same writes as recording the
//! outcomes and then claiming in one transaction (see `Tx::record_outcomes`
//! and `Tx::claim`), as one statement that is its own transaction: one round
//! trip where that transaction took four (`BEGIN`, the close, the claim,
//! `COMMIT`).
//!
//! One snapshot serves both halves, so the claim does not see what the close
//! wrote: the operation behind one just closed on the same VM is taken by the
//! queue's next claim, not this one (its slot goes back, and the close
//! announced the queue).

use std::collections::BTreeSet;

use sqlx::{AssertSqlSafe, FromRow as _, Row as _};

use super::{
    Backend, Store,
    claim_sql::{AFTER_CLAIM_LIMITS, CLAIMED_ROWS, ClaimedRow, claim_ctes_postgres, claim_limits},
    metrics::HeldCounterArrays,
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
    /// The outcomes of these operations were recorded (the others' leases
    /// were lost), and these operations claimed, oldest first.
    Done { held: BTreeSet<OperationId>, claimed: Vec<Operation> },
    /// Another worker claimed an operation of the same VM at the same
    /// moment: nothing was written.
    Contended,
}

/// The statement: the close, the counters of the attempts it recorded, and
/// the claim; answers the ids recorded (on every row) beside each operation
/// claimed, or on one row of nulls if none was.
static RECORD_AND_CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let counters = AFTER_CLAIM_LIMITS + OUTCOME_ARRAYS;
    format!(
        "WITH {}, counted AS ({}), {} SELECT ARRAY(SELECT id FROM fin) AS held, c.* \
         FROM (SELECT) AS one LEFT JOIN ({CLAIMED_ROWS}) AS c ON true",
        close_ctes_postgres("$4", "$2", AFTER_CLAIM_LIMITS),
        HeldCounterArrays::upsert_sql(counters, "SELECT id FROM fin"),
        claim_ctes_postgres(),
    )
});

impl Store {
    /// PostgreSQL: records each `(op, outcome)` where `claim.worker` still
    /// holds the lease (closed at `now`, the instant the outcomes were
    /// decided with), adds the `counters` of each operation recorded, and
    /// claims the next work — in one statement, one commit. Announces the
    /// queues where a retry or the next operation on a VM now waits.
    pub async fn record_and_claim(
        &self,
        ended: &[(&Operation, &Outcome)],
        counters: &[(OperationId, Delta)],
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
        let query = HeldCounterArrays::of(counters).bind(OutcomeArrays::of(ended, now).bind(query));
        let mut conn = connections.one_statement().await?;
        let answer = query.fetch_all(&mut *conn).await;
        conn.done(matches!(&answer, Ok(_) | Err(sqlx::Error::Database(_))));
        let rows = match answer {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(Handover::Contended),
            Err(e) => return Err(e.into()),
        };
        // Every row names the ids recorded; a row without an id claimed nothing.
        let held: BTreeSet<OperationId> = match rows.first() {
            Some(row) => row.try_get::<Vec<uuid::Uuid>, _>("held")?.into_iter().map(OperationId).collect(),
            None => BTreeSet::new(),
        };
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<OperationId>, _>("id")?.is_some() {
                claimed.push(Operation::from(ClaimedRow::from_row(row)?));
            }
        }
        claimed.sort_by_key(|op| op.id);
        for queue in queues_to_wake(ended, &held) {
            self.wakes.announce(&queue);
        }
        Ok(Handover::Done { held, claimed })
    }
}
