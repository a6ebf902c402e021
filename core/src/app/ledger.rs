//! The ledger's use cases for the worker: record how an attempt ended, take
//! back work from a worker that stopped or died, record a health run, prune.
//! Each writes the state change and the alert it implies in one transaction.

use std::time::Duration;

use super::App;
use crate::{
    OperationId, Result, Timestamp,
    alert::sources::{self, FailedOperation},
    backoff::Backoff,
    health::{Measurement, Status, step},
    metrics,
    operation::Operation,
    outcome::{Finish, Outcome, Recorded},
    store::{ClaimGroup, Handover, HealthRunRecord, NextClaim, PruneCutoffs, PruneReport, Tx},
};

const DAY: Duration = Duration::from_secs(86_400);

/// What one pass of the reaper did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReapReport {
    pub abandoned: usize,
}

impl App {
    /// Records how attempt `op.attempt_count` ended and moves the operation on
    /// (succeeded, cancelled, retrying with a durable backoff, or failed — with
    /// its alert). A lost lease is said apart from every error.
    #[tracing::instrument(skip(self, op, finish, backoff), fields(id = %op.id, attempt = op.attempt_count))]
    pub async fn finish(&self, op: &Operation, worker: &str, finish: Finish, backoff: &Backoff) -> Result<Recorded> {
        let mut recorded = self.finish_many(&[(op, finish)], worker, backoff).await?;
        recorded.pop().ok_or_else(|| crate::Error::internal("no outcome recorded"))
    }

    /// [`App::finish`] for many attempts in one transaction (one commit), the
    /// counters they add in one statement; the answers in the same order. An
    /// error records none of them.
    pub async fn finish_many(
        &self,
        ended: &[(&Operation, Finish)],
        worker: &str,
        backoff: &Backoff,
    ) -> Result<Vec<Recorded>> {
        let mut tx = self.store.begin_queue().await?;
        let (recorded, counters) = record_finishes(&mut tx, ended, worker, backoff).await?;
        tx.add_counters(&counters);
        tx.commit().await?;
        Ok(recorded)
    }

    /// [`App::finish_many`], and in the same transaction the next work for
    /// the slots those attempts held (see [`NextClaims`]): one commit ends
    /// some attempts and starts others. Returns the answers, and what each
    /// queue claimed. An error records and claims nothing.
    pub async fn finish_and_claim(
        &self,
        ended: &[(&Operation, Finish)],
        worker: &str,
        backoff: &Backoff,
        next: &NextClaims<'_>,
    ) -> Result<(Vec<Recorded>, Vec<(String, Vec<Operation>)>)> {
        if let Some(done) = self.record_and_claim(ended, worker, backoff, next).await {
            return done;
        }
        let mut tx = self.store.begin_queue().await?;
        let (recorded, counters) = record_finishes(&mut tx, ended, worker, backoff).await?;
        // On PostgreSQL written by the claim's own statement (one round trip
        // fewer); the counters' rows are what concurrent batches share, locked
        // from then until the commit.
        tx.add_counters(&counters);
        let mut claimed = Vec::with_capacity(next.queues.len());
        for (queue, groups) in &next.queues {
            // A race lost to another worker (for one of the same VMs) fails
            // it all: the caller records the outcomes alone, and the queues'
            // own fetches look again.
            match tx.claim(queue, groups, worker, next.host, next.lease).await? {
                Some(ops) if !ops.is_empty() => claimed.push((queue.clone(), ops)),
                Some(_) => {}
                None => return Err(claim_contended()),
            }
        }
        tx.commit().await?;
        Ok((recorded, claimed))
    }

    /// [`App::finish_and_claim`] in one statement (see
    /// [`Store::record_and_claim`]), where it can be: on PostgreSQL, for
    /// one queue, when no outcome raises an alert (that is a transaction's
    /// work) and the worker knows when each attempt started. `None` where it
    /// cannot, or where a lease of the batch was lost (nothing was written).
    async fn record_and_claim(
        &self,
        ended: &[(&Operation, Finish)],
        worker: &str,
        backoff: &Backoff,
        next: &NextClaims<'_>,
    ) -> Option<Result<(Vec<Recorded>, Vec<(String, Vec<Operation>)>)>> {
        let [(queue, groups)] = next.queues.as_slice() else { return None };
        if self.store.kind() != crate::store::BackendKind::Postgres {
            return None;
        }
        let now = self.store.now();
        let mut outcomes = Vec::with_capacity(ended.len());
        let mut counters = Vec::new();
        for (op, finish) in ended {
            let started = op.attempt_started_at?;
            let outcome = Outcome::of(op, finish.clone(), backoff, now);
            if outcome.failed_for_good() {
                return None;
            }
            counters.extend(attempt_counters(op, &outcome, started, now));
            outcomes.push(outcome);
        }
        let counters = metrics::merge(counters);
        let pairs: Vec<(&Operation, &Outcome)> = ended.iter().map(|(op, _)| *op).zip(&outcomes).collect();
        let claim = NextClaim { queue, groups, worker, host: next.host, lease: next.lease };
        match self.store.record_and_claim(&pairs, &counters, now, claim).await {
            Ok(Handover::Done { claimed }) => {
                let recorded = outcomes.iter().map(|o| Recorded::Status(o.status)).collect();
                let claimed = if claimed.is_empty() { Vec::new() } else { vec![(queue.clone(), claimed)] };
                Some(Ok((recorded, claimed)))
            }
            // The transaction's way records the outcomes still held, each counted alone.
            Ok(Handover::LeaseLost) => None,
            Ok(Handover::Contended) => Some(Err(claim_contended())),
            Err(e) => Some(Err(e)),
        }
    }

    /// Hands a running operation back: `owner` = this worker on shutdown, or
    /// `None` for an expired lease (the reaper). Returns whether it did.
    pub async fn abandon(&self, id: OperationId, owner: Option<&str>, why: &str, backoff: &Backoff) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let Some(taken) = tx.take_back(id, owner).await? else { return Ok(false) };
        let message = format!("{why} (worker {})", taken.lease_owner.as_deref().unwrap_or("?"));
        let outcome =
            Outcome::abandoned(taken.attempt, taken.max_attempts, owner.is_some(), message, backoff, tx.now());
        let started = tx.record_abandoned(id, &taken, &outcome).await?;
        let finished = outcome.status.is_terminal().then_some(outcome.status);
        let seconds = tx.now().millis_since(started) / 1000.0;
        // Its queue wait is not known here (the hand-back reads no more than it
        // needs): an abandoned attempt counts in the duration histogram only.
        tx.add_counters(&metrics::attempt_ended(taken.kind, outcome.attempt, seconds, None, finished));
        if outcome.failed_for_good() {
            let failed = FailedOperation {
                id,
                kind: taken.kind,
                host: taken.host.as_deref(),
                vm: taken.vm.as_deref(),
                params: &taken.params,
                code: "abandoned",
                message: outcome.message.as_deref().unwrap_or("abandoned"),
            };
            alert_failure(&mut tx, &failed).await?;
        }
        tx.commit().await?;
        tracing::warn!(
            operation = %id,
            attempt = taken.attempt,
            status = outcome.status.as_str(),
            "{}",
            outcome.message.as_deref().unwrap_or_default()
        );
        Ok(true)
    }

    /// Takes back running operations whose lease expired (their worker died or hung).
    pub async fn reap(&self, backoff: &Backoff) -> Result<ReapReport> {
        let mut report = ReapReport::default();
        for id in self.store.expired_leases(200).await? {
            let why = "the worker stopped renewing its lease (it died or hung)";
            if self.abandon(id, None, why, backoff).await? {
                report.abandoned += 1;
            }
        }
        Ok(report)
    }

    /// Records a health run: hysteresis per check, results, state and
    /// transitions, and the alerts they imply, in one transaction.
    pub async fn record_health_run(
        &self,
        id: OperationId,
        host: &str,
        started_at: crate::Timestamp,
        measurements: &[Measurement],
    ) -> Result<HealthRunRecord> {
        let states = self.store.health_states(Some(host)).await?;
        let now = self.now();
        let mut worst = Status::Ok;
        let mut tx = self.store.begin().await?;
        tx.insert_health_run(id, host, started_at).await?;
        for m in measurements {
            let prev = states.iter().find(|s| s.check_name == m.check).map(|s| s.check_state());
            let (state, transition) = step(prev.as_ref(), m.raw, m.for_s, now);
            worst = worst.max(state.status);
            tx.record_check(id, host, m, &state, transition).await?;
            if let Some(change) = sources::health_check(host, m, state.status, transition.is_some()) {
                tx.apply_alert(&change).await?;
            }
        }
        tx.close_health_run(id, worst).await?;
        tx.commit().await?;
        Ok(HealthRunRecord { id, host: host.to_owned(), status: worst, started_at, finished_at: now })
    }

    /// Deletes what is past its retention (`[retention]`), as of now.
    pub async fn prune(&self) -> Result<PruneReport> {
        let (now, keep) = (self.now(), &self.retention);
        let cutoffs = PruneCutoffs {
            done_before: now.minus(DAY * keep.operations_days),
            failed_before: now.minus(DAY * keep.failed_operations_days),
            runs_before: now.minus(DAY * keep.health_runs_days),
            alerts_before: now.minus(DAY * keep.alerts_days),
            batch: keep.batch,
        };
        self.store.prune(&cutoffs).await
    }
}

/// Writes the alert an operation failing for good implies, and marks the
/// backup it was writing as failed (a backup's id is its operation's).
async fn alert_failure(tx: &mut Tx, failed: &FailedOperation<'_>) -> Result<()> {
    if failed.kind == crate::operation::OperationKind::BackupCreate {
        tx.fail_backup(crate::BackupId(failed.id.0), &format!("{}: {}", failed.code, failed.message)).await?;
    }
    let Some(out) = sources::failed_operation(failed) else { return Ok(()) };
    if let Some((notification, detail)) = &out.failed_notification {
        tx.mark_notification_failed(*notification, detail).await?;
    }
    tx.raise_alert(&out.alert).await?;
    Ok(())
}

/// What attempts that ended record, inside `tx`: their outcomes and the
/// alerts of those that failed for good; returns the answers, and the
/// counters they add (for the caller to write, see [`Tx::add_counters`]).
async fn record_finishes(
    tx: &mut Tx,
    ended: &[(&Operation, Finish)],
    worker: &str,
    backoff: &Backoff,
) -> Result<(Vec<Recorded>, Vec<metrics::Delta>)> {
    let outcomes: Vec<Outcome> =
        ended.iter().map(|(op, finish)| Outcome::of(op, finish.clone(), backoff, tx.now())).collect();
    let pairs: Vec<(&Operation, &Outcome)> = ended.iter().map(|(op, _)| *op).zip(&outcomes).collect();
    let started = tx.record_outcomes(&pairs, worker).await?;
    let mut deltas = Vec::new();
    let mut recorded = Vec::with_capacity(ended.len());
    for ((op, outcome), started) in pairs.into_iter().zip(started) {
        let Some(started) = started else {
            recorded.push(Recorded::LeaseLost);
            continue;
        };
        deltas.extend(attempt_counters(op, outcome, started, tx.now()));
        if outcome.failed_for_good() {
            let failed = FailedOperation {
                id: op.id,
                kind: op.kind,
                host: op.host.as_deref(),
                vm: op.vm.as_deref(),
                params: &op.params,
                code: outcome.error_code.as_deref().unwrap_or("failed"),
                message: outcome.message.as_deref().unwrap_or("failed"),
            };
            alert_failure(tx, &failed).await?;
        }
        recorded.push(Recorded::Status(outcome.status));
    }
    Ok((recorded, metrics::merge(deltas)))
}

/// The counters of attempt `op.attempt_count`, started at `started` and
/// ended at `now` with `outcome`.
fn attempt_counters(op: &Operation, outcome: &Outcome, started: Timestamp, now: Timestamp) -> Vec<metrics::Delta> {
    let finished = outcome.status.is_terminal().then_some(outcome.status);
    let seconds = now.millis_since(started) / 1000.0;
    // Runnable since it was created, or since its retry (or hand-back) fell due.
    let waited = started.millis_since(op.next_attempt_at.unwrap_or(op.created_at)) / 1000.0;
    metrics::attempt_ended(op.kind, outcome.attempt, seconds, Some(waited), finished)
}

fn claim_contended() -> crate::Error {
    crate::Error::conflict("claim_contended", "a concurrent claim took one of the same VMs")
}

/// Where the slots of attempts that just ended go next: per queue, the
/// groups a claim may take (each class's kinds, as many as its slots).
#[derive(Debug, Clone)]
pub struct NextClaims<'a> {
    pub host: &'a str,
    pub lease: Duration,
    pub queues: Vec<(String, Vec<ClaimGroup>)>,
}
