//! Metric counters as stored, and the current figures the gauges show.

use super::{Store, read_db, tx::TxInner};
use crate::{
    Result, Timestamp,
    backup::{BackupState, VerifyResult},
    metrics::Delta,
};
use sqlx::AssertSqlSafe;

/// One backup not deleted, as the metrics page counts it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BackupMetricRow {
    pub host: String,
    pub vm: String,
    pub state: BackupState,
    pub finished_at: Option<Timestamp>,
    /// The last verification's result and end, if it was ever verified.
    pub last_result: Option<VerifyResult>,
    pub last_at: Option<Timestamp>,
}

impl Store {
    /// Every counter series: (name, labels, value), what was folded and the
    /// increments appended since summed (one snapshot, so a fold under way is
    /// seen before or after, never half).
    pub async fn metric_counters(&self) -> Result<Vec<(String, String, f64)>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, String, f64)>(
                "SELECT name, labels, SUM(value) FROM (SELECT name, labels, value FROM metric_counters \
                 UNION ALL SELECT name, labels, value FROM metric_counter_increments) AS c \
                 GROUP BY name, labels ORDER BY name, labels",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// Moves the counter increments appended so far into the counters, in
    /// one transaction: each increment is added exactly once, whoever folds
    /// at the same time. How many increments it moved.
    ///
    /// PostgreSQL: an increment committed after the `DELETE` began is not
    /// seen by it and waits for the next fold; one another fold deleted
    /// first is skipped once that commits. The sums are added in one order
    /// of series, so two folds never wait on each other in a cycle. SQLite
    /// has one writer: nothing is appended between its two statements.
    pub async fn fold_counters(&self) -> Result<u64> {
        let mut tx = self.begin().await?;
        let folded = match &mut tx.inner {
            TxInner::Postgres(c) => {
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
                    "WITH d AS (DELETE FROM metric_counter_increments RETURNING name, labels, value), \
                     added AS (INSERT INTO metric_counters (name, labels, value) SELECT name, labels, SUM(value) \
                     FROM d GROUP BY name, labels ORDER BY name, labels {UPSERT}) SELECT COUNT(*) FROM d"
                )))
                .fetch_one(&mut **c)
                .await?
            }
            TxInner::Sqlite(c) => {
                // `WHERE true`: SQLite's upsert after a SELECT needs it to parse.
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO metric_counters (name, labels, value) SELECT name, labels, SUM(value) \
                     FROM metric_counter_increments WHERE true GROUP BY name, labels {UPSERT}"
                )))
                .execute(&mut **c)
                .await?;
                let deleted = sqlx::query("DELETE FROM metric_counter_increments").execute(&mut **c).await?;
                i64::try_from(deleted.rows_affected()).unwrap_or(i64::MAX)
            }
        };
        tx.commit().await?;
        Ok(u64::try_from(folded).unwrap_or(0))
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

impl Store {
    /// Every backup that is not deleted, with its last verification.
    pub async fn backup_metric_rows(&self) -> Result<Vec<BackupMetricRow>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, BackupMetricRow>(
                "SELECT b.host, b.vm, b.state, b.finished_at, \
                 (SELECT v.result FROM backup_verifications v WHERE v.backup_id = b.id ORDER BY v.id DESC LIMIT 1) \
                 AS last_result, \
                 (SELECT v.finished_at FROM backup_verifications v WHERE v.backup_id = b.id ORDER BY v.id DESC LIMIT 1) \
                 AS last_at \
                 FROM backups b WHERE b.state <> 'deleted' ORDER BY b.id",
            )
            .fetch_all(pool)
            .await
        })?)
    }
}

/// What PostgreSQL's append of counter increments binds from `$first` on:
/// the series' names, labels and increments, as arrays.
pub(super) struct CounterArrays<'a> {
    pub names: Vec<&'static str>,
    pub labels: Vec<&'a str>,
    pub values: Vec<f64>,
}

impl<'a> CounterArrays<'a> {
    /// The rows of `deltas`.
    pub(super) fn of(deltas: &'a [Delta]) -> Self {
        Self {
            names: deltas.iter().map(|d| d.name).collect(),
            labels: deltas.iter().map(|d| d.labels.as_str()).collect(),
            values: deltas.iter().map(|d| d.value).collect(),
        }
    }

    /// The append, its arrays `$first`..`$first + 2`: one text whatever the
    /// number of series.
    pub(super) fn append_sql(first: usize) -> String {
        let [names, labels, values] = [first, first + 1, first + 2];
        format!(
            "INSERT INTO metric_counter_increments (name, labels, value) \
             SELECT * FROM unnest(${names}::text[], ${labels}::text[], ${values}::float8[])"
        )
    }
}

/// Adds a fold's sums to the counters (shard 0: the shards of earlier
/// versions are summed when read like any row).
const UPSERT: &str = "ON CONFLICT (name, labels, shard) DO UPDATE SET value = metric_counters.value + excluded.value";

impl super::Tx {
    /// Adds `deltas` to the counters this transaction writes: on PostgreSQL
    /// in its next claim's statement, if it claims (see `Tx::claim`), else in
    /// one statement just before it commits.
    pub fn add_counters(&mut self, deltas: &[Delta]) {
        self.counters.extend_from_slice(deltas);
        self.counters = crate::metrics::merge(std::mem::take(&mut self.counters));
    }

    /// Appends the counter increments added and not yet written, in one
    /// statement (see [`Store::fold_counters`]).
    pub(super) async fn write_counters(&mut self) -> Result<()> {
        if self.counters.is_empty() {
            return Ok(());
        }
        let deltas = std::mem::take(&mut self.counters);
        match &mut self.inner {
            TxInner::Postgres(c) => {
                let rows = CounterArrays::of(&deltas);
                sqlx::query(AssertSqlSafe(CounterArrays::append_sql(1)))
                    .bind(rows.names)
                    .bind(rows.labels)
                    .bind(rows.values)
                    .execute(&mut **c)
                    .await?;
            }
            TxInner::Sqlite(c) => {
                let rows: Vec<String> =
                    (0..deltas.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
                let sql =
                    format!("INSERT INTO metric_counter_increments (name, labels, value) VALUES {}", rows.join(", "));
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for d in &deltas {
                    q = q.bind(d.name).bind(&d.labels).bind(d.value);
                }
                q.execute(&mut **c).await?;
            }
        }
        Ok(())
    }
}
