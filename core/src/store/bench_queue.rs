//! Bulk rows for the benchmark harness: many `noop` operations written by one
//! statement (a queue to drain, or finished history to measure against), and
//! the figures of a drain read back from the ledger's own timestamps.

use serde_json::json;
use sqlx::{AssertSqlSafe, types::Json};

use super::{BackendKind, Store, read_db, with_db};
use crate::{Result, Timestamp, operation::OperationKind, queue::SHARED_QUEUE};

/// What a benchmark pre-inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Queued, for the worker to drain.
    Queued,
    /// Succeeded, with their attempt rows: history a queue must not slow down on.
    Finished,
}

/// A drain as the ledger recorded it.
#[derive(Debug, Clone, Copy)]
pub struct DrainFigures {
    pub finished: i64,
    /// The first attempt's start and the last operation's end.
    pub first_start: Option<Timestamp>,
    pub last_finish: Option<Timestamp>,
}

impl Store {
    /// Inserts `n` `noop` operations on the shared queue, requested by `tag`, in
    /// one statement (plus one for the attempt rows of finished ones), and
    /// announces the queue. Their ids are one UUID v7 prefix and a counter, so
    /// they sort in insertion order after every earlier operation.
    pub async fn bench_fill(&self, tag: &str, n: u64, fill: Fill) -> Result<()> {
        let base = crate::OperationId::new().0.hyphenated().to_string();
        let prefix = &base[..24];
        let id = match self.kind() {
            BackendKind::Postgres => "CAST($1 || lpad(to_hex(i), 12, '0') AS uuid)",
            BackendKind::Sqlite => "$1 || printf('%012x', i)",
        };
        let sql = format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $2) \
             INSERT INTO operations (id, kind, params, status, queue, requested_by, request_hash, attempt_count, \
             max_attempts, cancel_requested, created_at, updated_at, started_at, finished_at, class) \
             SELECT {id}, $10, $3, $4, $5, $6, '', $7, 3, FALSE, $8, $8, $9, $9, $11 FROM s"
        );
        let now = self.now();
        let (status, attempts, done) = match fill {
            Fill::Queued => ("queued", 0, None),
            Fill::Finished => ("succeeded", 1, Some(now)),
        };
        let mut tx = self.begin().await?;
        super::tx::on_tx!(tx, |c, Db| {
            sqlx::query::<Db>(AssertSqlSafe(sql.as_str()))
                .bind(prefix)
                .bind(n as i64)
                .bind(Json(json!({})))
                .bind(status)
                .bind(SHARED_QUEUE)
                .bind(tag)
                .bind(attempts)
                .bind(now)
                .bind(done)
                .bind(OperationKind::Noop.as_str())
                .bind(OperationKind::Noop.class().as_str())
                .execute(&mut *c)
                .await?;
            if fill == Fill::Finished {
                sqlx::query::<Db>(
                    "INSERT INTO operation_attempts (operation_id, attempt, worker, host, started_at, finished_at, \
                     outcome) SELECT id, 1, 'bench', 'bench', started_at, finished_at, 'succeeded' FROM operations \
                     WHERE requested_by = $1",
                )
                .bind(tag)
                .execute(&mut *c)
                .await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        if fill == Fill::Queued {
            tx.announce(SHARED_QUEUE);
        }
        tx.commit().await?;
        // As autovacuum would soon: the planner then knows the table's size.
        if self.kind() == BackendKind::Postgres {
            with_db!(self, |pool, Db| sqlx::query::<Db>("ANALYZE operations, operation_attempts")
                .execute(pool)
                .await
                .map(|_| ()))?;
        }
        Ok(())
    }

    /// Operations of `queue` not finished yet (queued, retrying or running).
    pub async fn unfinished_count(&self, queue: &str) -> Result<i64> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, i64>(
                "SELECT COUNT(*) FROM operations WHERE queue = $1 AND status IN ('queued', 'retrying', 'running')",
            )
            .bind(queue)
            .fetch_one(pool)
            .await
        })?)
    }

    /// How the operations `tag` asked for were drained: how many finished, from
    /// the first attempt's start to the last end.
    pub async fn drain_figures(&self, tag: &str) -> Result<DrainFigures> {
        let (finished, first_start, last_finish) = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (i64, Option<Timestamp>, Option<Timestamp>)>(
                "SELECT COUNT(o.finished_at), MIN(a.started_at), MAX(o.finished_at) FROM operations o \
                 JOIN operation_attempts a ON a.operation_id = o.id AND a.attempt = 1 WHERE o.requested_by = $1",
            )
            .bind(tag)
            .fetch_one(pool)
            .await
        })?;
        Ok(DrainFigures { finished, first_start, last_finish })
    }
}
