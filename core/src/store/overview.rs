//! The figures the dashboard's overview shows: counts by status now and
//! over a window, and firing alerts by severity. Grouped counts only; the
//! app adds the hosts.

use super::{BackendKind, Store, read_db};
use crate::{Result, Timestamp, alert::Severity, operation::OperationStatus};

/// Counts for the overview page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerCounts {
    /// Operations in each unfinished status (queued, running, retrying), now.
    pub unfinished: Vec<(OperationStatus, i64)>,
    /// Operations that finished since the window's start, by final status.
    pub finished: Vec<(OperationStatus, i64)>,
    /// Firing alerts by severity.
    pub firing: Vec<(Severity, i64)>,
}

impl Store {
    /// The ledger's counts, with "finished" meaning at or after `since`.
    pub async fn ledger_counts(&self, since: Timestamp) -> Result<LedgerCounts> {
        let unfinished: Vec<(OperationStatus, i64)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (OperationStatus, i64)>(
                "SELECT status, COUNT(*) FROM operations WHERE status IN ('queued', 'running', 'retrying') \
                 GROUP BY status",
            )
            .fetch_all(pool)
            .await
        })?;
        // One range read of the `finished_at` index (only a finished
        // operation has one). Grouping by status instead would lead SQLite
        // to walk every row of the status index to avoid a sort.
        let (succeeded, failed, cancelled): (i64, i64, i64) = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (i64, i64, i64)>(
                "SELECT COUNT(*) FILTER (WHERE status = 'succeeded'), COUNT(*) FILTER (WHERE status = 'failed'), \
                 COUNT(*) FILTER (WHERE status = 'cancelled') FROM operations WHERE finished_at >= $1",
            )
            .bind(since)
            .fetch_one(pool)
            .await
        })?;
        let finished = [
            (OperationStatus::Succeeded, succeeded),
            (OperationStatus::Failed, failed),
            (OperationStatus::Cancelled, cancelled),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        let firing: Vec<(Severity, i64)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (Severity, i64)>(
                "SELECT severity, COUNT(*) FROM alerts WHERE status = 'firing' GROUP BY severity",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(LedgerCounts { unfinished, finished, firing })
    }

    /// Operations finished at or after `since`, counted per `bucket` (whole
    /// seconds) since then and by final status: `(bucket index, status, n)`.
    /// One range read of the `finished_at` index, grouped in the database.
    pub async fn finished_buckets(&self, since: Timestamp, bucket_s: u32) -> Result<Vec<(i64, OperationStatus, i64)>> {
        let index = match self.kind() {
            BackendKind::Sqlite => "CAST((julianday(finished_at) - julianday($1)) * 86400 / $2 AS INTEGER)",
            BackendKind::Postgres => "FLOOR(EXTRACT(EPOCH FROM (finished_at - $1)) / $2)::BIGINT",
        };
        let sql = format!(
            "SELECT {index} AS bucket, status, COUNT(*) FROM operations WHERE finished_at >= $1 \
             GROUP BY bucket, status"
        );
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (i64, OperationStatus, i64)>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(since)
                .bind(f64::from(bucket_s))
                .fetch_all(pool)
                .await
        })?)
    }
}
