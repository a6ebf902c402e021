//! The figures the dashboard's overview shows: counts by status now and
//! over a window, and firing alerts by severity. Grouped counts only; the
//! app adds the hosts.

use super::{Store, read_db};
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
}
