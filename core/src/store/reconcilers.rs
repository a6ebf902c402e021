//! The last run of each of the scheduler's reconcilers: when, how long, what
//! it did, and its last error — what `GET /api/v1/reconcilers` shows.

use serde::Serialize;

use super::{Store, read_db, with_db};
use crate::{Result, Timestamp};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReconcilerRun {
    pub name: String,
    /// The scheduler process that ran it last.
    pub scheduler: String,
    pub last_run_at: Timestamp,
    pub duration_ms: f64,
    pub ok: bool,
    /// What the last run did, in a few words.
    pub summary: String,
    /// The last error (kept after later runs succeed), and when it happened.
    pub error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// Runs and failed runs counted since the first.
    pub runs: i64,
    pub failures: i64,
}

/// One run to record; `runs` and `failures` are what happened since the last record.
#[derive(Debug, Clone)]
pub struct RunRecord<'a> {
    pub name: &'a str,
    pub scheduler: &'a str,
    pub at: Timestamp,
    pub duration_ms: f64,
    pub ok: bool,
    pub summary: &'a str,
    pub error: Option<&'a str>,
    pub runs: i64,
    pub failures: i64,
}

impl Store {
    pub async fn record_reconciler_run(&self, r: &RunRecord<'_>) -> Result<()> {
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>(
                "INSERT INTO reconciler_runs (name, scheduler, last_run_at, duration_ms, ok, summary, error, \
                 last_error_at, runs, failures) VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 IS NULL THEN NULL ELSE $3 END, $8, $9) \
                 ON CONFLICT (name) DO UPDATE SET scheduler = excluded.scheduler, last_run_at = excluded.last_run_at, \
                 duration_ms = excluded.duration_ms, ok = excluded.ok, summary = excluded.summary, \
                 error = COALESCE(excluded.error, reconciler_runs.error), \
                 last_error_at = COALESCE(excluded.last_error_at, reconciler_runs.last_error_at), \
                 runs = reconciler_runs.runs + excluded.runs, failures = reconciler_runs.failures + excluded.failures",
            )
            .bind(r.name)
            .bind(r.scheduler)
            .bind(r.at)
            .bind(r.duration_ms)
            .bind(r.ok)
            .bind(r.summary)
            .bind(r.error)
            .bind(r.runs)
            .bind(r.failures)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn reconciler_runs(&self) -> Result<Vec<ReconcilerRun>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, ReconcilerRun>(
                "SELECT name, scheduler, last_run_at, duration_ms, ok, summary, error, last_error_at, runs, failures \
                 FROM reconciler_runs ORDER BY name",
            )
            .fetch_all(pool)
            .await
        })?)
    }
}
