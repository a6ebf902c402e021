//! Metric counters as stored, and the current figures the gauges show.

use super::{Store, read_db, tx::on_tx};
use crate::{Result, metrics::Delta};

impl Store {
    /// Every counter series: (name, labels, value).
    pub async fn metric_counters(&self) -> Result<Vec<(String, String, f64)>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, String, f64)>(
                "SELECT name, labels, value FROM metric_counters ORDER BY name, labels",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// Operations not finished, counted by status, kind and host.
    pub async fn active_operation_counts(&self) -> Result<Vec<(String, String, Option<String>, i64)>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, String, Option<String>, i64)>(
                "SELECT status, kind, host, COUNT(*) FROM operations WHERE status IN ('queued', 'running', 'retrying') \
                 GROUP BY status, kind, host ORDER BY status, kind, host",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// Firing alerts counted by severity.
    pub async fn firing_alert_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, i64)>(
                "SELECT severity, COUNT(*) FROM alerts WHERE status = 'firing' GROUP BY severity ORDER BY severity",
            )
            .fetch_all(pool)
            .await
        })?)
    }
}

impl super::Tx {
    /// Adds `deltas` (distinct series) to their counters, in one statement.
    pub async fn add_counters(&mut self, deltas: &[Delta]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let rows: Vec<String> =
            (0..deltas.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
        let sql = format!(
            "INSERT INTO metric_counters (name, labels, value) VALUES {} \
             ON CONFLICT (name, labels) DO UPDATE SET value = metric_counters.value + excluded.value",
            rows.join(", ")
        );
        on_tx!(self, |c, Db| {
            let mut q = sqlx::query::<Db>(sqlx::AssertSqlSafe(sql.as_str()));
            for d in deltas {
                q = q.bind(d.name).bind(&d.labels).bind(d.value);
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
