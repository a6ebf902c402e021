//! Retention of the ledger: finished operations (with their attempts), resolved
//! alerts and health runs older than their keep time are deleted in bounded batches, so
//! pruning never holds the database long enough to stall workers.

use std::time::Instant;

use super::{Store, with_db};
use crate::{OperationId, Result, Timestamp};

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct PruneReport {
    pub operations: u64,
    pub attempts: u64,
    pub health_runs: u64,
    /// Resolved alerts (with their events and notifications) and test notifications.
    pub alerts: u64,
    pub batches: u64,
    pub duration_ms: u64,
}

/// What is old enough to go: rows finished (or resolved) before these instants.
#[derive(Debug, Clone, Copy)]
pub struct PruneCutoffs {
    pub done_before: Timestamp,
    pub failed_before: Timestamp,
    pub runs_before: Timestamp,
    pub alerts_before: Timestamp,
    /// Rows per statement.
    pub batch: u32,
}

impl Store {
    /// Deletes what finished before its cutoff, in batches.
    pub async fn prune(&self, cutoffs: &PruneCutoffs) -> Result<PruneReport> {
        let started = Instant::now();
        let PruneCutoffs { done_before, failed_before, runs_before, alerts_before, batch } = *cutoffs;
        let batch = i64::from(batch.max(1));
        let mut report = PruneReport::default();
        loop {
            // Finished operations past their time, never one a kept retry still points to.
            let ids: Vec<OperationId> = with_db!(self, |pool, Db| {
                sqlx::query_scalar::<Db, OperationId>(
                    "SELECT id FROM operations o WHERE ((status IN ('succeeded', 'cancelled') AND finished_at < $1) \
                     OR (status = 'failed' AND finished_at < $2)) \
                     AND NOT EXISTS (SELECT 1 FROM operations r WHERE r.retry_of = o.id) ORDER BY id LIMIT $3",
                )
                .bind(done_before)
                .bind(failed_before)
                .bind(batch)
                .fetch_all(pool)
                .await
            })?;
            if ids.is_empty() {
                break;
            }
            let (attempts, operations) = with_db!(self, |pool, Db| {
                let mut tx = pool.begin().await?;
                let (mut a, mut o) = (0, 0);
                for id in &ids {
                    a += sqlx::query::<Db>("DELETE FROM operation_attempts WHERE operation_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    o += sqlx::query::<Db>("DELETE FROM operations WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>((a, o))
            })?;
            report.attempts += attempts;
            report.operations += operations;
            report.batches += 1;
            tokio::task::yield_now().await;
        }
        loop {
            let deleted = with_db!(self, |pool, Db| {
                sqlx::query::<Db>(
                    "DELETE FROM health_runs WHERE id IN (SELECT id FROM health_runs WHERE finished_at < $1 LIMIT $2)",
                )
                .bind(runs_before)
                .bind(batch)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
            report.health_runs += deleted;
            if deleted == 0 {
                break;
            }
            report.batches += 1;
        }
        loop {
            // Events and notifications go with their alert (ON DELETE CASCADE).
            let deleted = with_db!(self, |pool, Db| {
                let mut tx = pool.begin().await?;
                let alerts = sqlx::query::<Db>(
                    "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE status = 'resolved' \
                     AND resolved_at < $1 LIMIT $2)",
                )
                .bind(alerts_before)
                .bind(batch)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let tests = sqlx::query::<Db>(
                    "DELETE FROM alert_notifications WHERE id IN (SELECT id FROM alert_notifications \
                     WHERE alert_id IS NULL AND created_at < $1 LIMIT $2)",
                )
                .bind(alerts_before)
                .bind(batch)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok::<_, sqlx::Error>(alerts + tests)
            })?;
            report.alerts += deleted;
            if deleted == 0 {
                break;
            }
            report.batches += 1;
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }
}
