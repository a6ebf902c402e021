//! Metric counters as stored, and the current figures the gauges show.

use super::{Store, read_db, tx::TxInner};
use crate::{
    OperationId, Result, Timestamp,
    backup::{BackupState, VerifyResult},
    metrics::{Delta, in_lock_order},
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

/// How many rows each counter series may be spread over (PostgreSQL).
pub const COUNTER_SHARDS: u8 = 8;

/// The shard this process's next counter-writing transaction writes.
static NEXT_SHARD: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// The shard for the next transaction's counters: the shards in turn, so
/// that transactions begun one after the other (the batches under way at
/// once) write different rows.
fn next_shard() -> i16 {
    i16::from(NEXT_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % COUNTER_SHARDS)
}

impl Store {
    /// Every counter series: (name, labels, value), its shards summed.
    pub async fn metric_counters(&self) -> Result<Vec<(String, String, f64)>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, String, f64)>(
                "SELECT name, labels, SUM(value) FROM metric_counters GROUP BY name, labels ORDER BY name, labels",
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

/// What PostgreSQL's counter upsert binds from `$first` on: the series'
/// names, labels and increments (arrays, in [`in_lock_order`]), and the shard.
pub(super) struct CounterArrays<'a> {
    pub names: Vec<&'static str>,
    pub labels: Vec<&'a str>,
    pub values: Vec<f64>,
    pub shard: i16,
}

impl<'a> CounterArrays<'a> {
    /// The rows of `deltas` (distinct series), written to the next shard
    /// (none taken for no rows).
    pub(super) fn of(deltas: &'a [Delta]) -> Self {
        let shard = if deltas.is_empty() { 0 } else { next_shard() };
        let deltas = in_lock_order(deltas);
        Self {
            names: deltas.iter().map(|d| d.name).collect(),
            labels: deltas.iter().map(|d| d.labels.as_str()).collect(),
            values: deltas.iter().map(|d| d.value).collect(),
            shard,
        }
    }

    /// The upsert, its arrays `$first`..`$first + 2` and its shard `$first + 3`:
    /// one text whatever the number of series, its rows taken in the order given.
    pub(super) fn upsert_sql(first: usize) -> String {
        let [names, labels, values, shard] = [first, first + 1, first + 2, first + 3];
        format!(
            "INSERT INTO metric_counters (name, labels, shard, value) SELECT d.name, d.labels, ${shard}, d.value \
             FROM unnest(${names}::text[], ${labels}::text[], ${values}::float8[]) \
             WITH ORDINALITY AS d(name, labels, value, n) ORDER BY d.n {UPSERT}"
        )
    }
}

/// [`CounterArrays`] whose every row belongs to an operation: the counters of
/// attempts whose outcomes a statement records, each added only if that
/// statement recorded its attempt (its id among those of `held`), summed per
/// series there.
pub(super) struct HeldCounterArrays<'a> {
    ops: Vec<uuid::Uuid>,
    rows: CounterArrays<'a>,
}

impl<'a> HeldCounterArrays<'a> {
    /// The rows of `deltas` (each an operation's, series repeating), in
    /// [`in_lock_order`], for the next shard (none taken for no rows).
    pub(super) fn of(deltas: &'a [(OperationId, Delta)]) -> Self {
        let mut ordered: Vec<&(OperationId, Delta)> = deltas.iter().collect();
        ordered.sort_by(|(_, a), (_, b)| a.lock_key().cmp(&b.lock_key()));
        Self {
            ops: ordered.iter().map(|(op, _)| op.0).collect(),
            rows: CounterArrays {
                names: ordered.iter().map(|(_, d)| d.name).collect(),
                labels: ordered.iter().map(|(_, d)| d.labels.as_str()).collect(),
                values: ordered.iter().map(|(_, d)| d.value).collect(),
                shard: if deltas.is_empty() { 0 } else { next_shard() },
            },
        }
    }

    /// The upsert, its arrays (operations, names, labels, increments)
    /// `$first`..`$first + 3` and its shard `$first + 4`; `held` a query of
    /// the ids whose rows count. Series in the order of their first row.
    pub(super) fn upsert_sql(first: usize, held: &str) -> String {
        let [ops, names, labels, values, shard] = [first, first + 1, first + 2, first + 3, first + 4];
        format!(
            "INSERT INTO metric_counters (name, labels, shard, value) SELECT d.name, d.labels, ${shard}, SUM(d.value) \
             FROM unnest(${ops}::uuid[], ${names}::text[], ${labels}::text[], ${values}::float8[]) \
             WITH ORDINALITY AS d(op, name, labels, value, n) WHERE d.op IN ({held}) \
             GROUP BY d.name, d.labels ORDER BY MIN(d.n) {UPSERT}"
        )
    }

    /// Binds the arrays and the shard, in order, after what `query` binds already.
    pub(super) fn bind<'q>(self, query: super::outcomes::PgQuery<'q>) -> super::outcomes::PgQuery<'q> {
        query.bind(self.ops).bind(self.rows.names).bind(self.rows.labels).bind(self.rows.values).bind(self.rows.shard)
    }
}

const UPSERT: &str = "ON CONFLICT (name, labels, shard) DO UPDATE SET value = metric_counters.value + excluded.value";

impl super::Tx {
    /// Adds `deltas` to the counters this transaction writes: on PostgreSQL
    /// in its next claim's statement, if it claims (see `Tx::claim`), else in
    /// one statement just before it commits.
    pub fn add_counters(&mut self, deltas: &[Delta]) {
        self.counters.extend_from_slice(deltas);
        self.counters = crate::metrics::merge(std::mem::take(&mut self.counters));
    }

    /// Writes the counters added and not yet written, in one statement, its
    /// rows locked in [`in_lock_order`]. On PostgreSQL each transaction of
    /// this process writes the next of [`COUNTER_SHARDS`] shards, so that
    /// the batches under way at once never wait on each other's rows (and
    /// can share a WAL flush); SQLite has one writer and writes shard 0.
    pub(super) async fn write_counters(&mut self) -> Result<()> {
        if self.counters.is_empty() {
            return Ok(());
        }
        let deltas = std::mem::take(&mut self.counters);
        match &mut self.inner {
            TxInner::Postgres(c) => {
                let rows = CounterArrays::of(&deltas);
                sqlx::query(AssertSqlSafe(CounterArrays::upsert_sql(1)))
                    .bind(rows.names)
                    .bind(rows.labels)
                    .bind(rows.values)
                    .bind(rows.shard)
                    .execute(&mut **c)
                    .await?;
            }
            TxInner::Sqlite(c) => {
                let rows: Vec<String> =
                    (0..deltas.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
                let sql =
                    format!("INSERT INTO metric_counters (name, labels, value) VALUES {} {UPSERT}", rows.join(", "));
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for d in in_lock_order(&deltas) {
                    q = q.bind(d.name).bind(&d.labels).bind(d.value);
                }
                q.execute(&mut **c).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_transactions_take_the_shards_in_turn() {
        // Other tests of this process may take shards meanwhile: each turn is
        // read relative to the one before, over more than a wrap of the counter.
        let mut last = next_shard();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let shard = next_shard();
            assert!((0..i16::from(COUNTER_SHARDS)).contains(&shard), "{shard}");
            assert_ne!(shard, last, "two transactions in a row share a shard");
            seen.insert(shard);
            last = shard;
        }
        assert_eq!(seen.len(), usize::from(COUNTER_SHARDS));
    }
}
