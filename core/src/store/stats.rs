//! Read-only figures over the ledger, for the benchmark harness and tests.

use super::{Store, read_db};
use crate::{Result, Timestamp};

impl Store {
    /// Milliseconds from submit to the start of the first attempt, for every
    /// operation `requested_by` asked for that has started.
    pub async fn pickup_latencies_ms(&self, requested_by: &str) -> Result<Vec<f64>> {
        let rows: Vec<(Timestamp, Timestamp)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (Timestamp, Timestamp)>(
                "SELECT o.created_at, a.started_at FROM operations o JOIN operation_attempts a \
                 ON a.operation_id = o.id AND a.attempt = 1 WHERE o.requested_by = $1",
            )
            .bind(requested_by)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(created, started)| started.millis_since(created)).collect())
    }

    /// How many operations `requested_by` asked for are in a terminal state.
    pub async fn finished_count(&self, requested_by: &str) -> Result<i64> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, i64>(
                "SELECT COUNT(*) FROM operations WHERE requested_by = $1 AND status IN ('succeeded', 'failed', 'cancelled')",
            )
            .bind(requested_by)
            .fetch_one(pool)
            .await
        })?)
    }

    /// Raise → delivered, per delivered notification of alerts raised by `actor`,
    /// and how many of those notifications are delivered.
    pub async fn alert_delivery_latencies_ms(&self, actor: &str) -> Result<Vec<f64>> {
        let rows: Vec<(Timestamp, Timestamp)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (Timestamp, Timestamp)>(
                "SELECT a.first_seen, n.delivered_at FROM alerts a JOIN alert_notifications n ON n.alert_id = a.id \
                 WHERE a.created_by = $1 AND n.status = 'delivered'",
            )
            .bind(actor)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(raised, delivered)| delivered.millis_since(raised)).collect())
    }
}
