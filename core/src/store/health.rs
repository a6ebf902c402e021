//! Health runs as stored: each check's result after hysteresis, the per-check
//! state, and the transitions (health events). What they mean is decided in
//! `crate::health` and `crate::app`.

use serde::Serialize;
use sqlx::types::Json;

use super::{Store, read_db, tx::on_tx};
use crate::{
    OperationId, Result, Timestamp,
    health::{CheckState, Measurement, Status, Threshold},
};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HealthRunRecord {
    pub id: OperationId,
    pub host: String,
    pub status: Status,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HealthResultRecord {
    pub check_name: String,
    pub status: Status,
    /// The measurement's own verdict before hysteresis (`ok`, `warn`, `error`, `hold`).
    pub raw_status: String,
    pub message: String,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub thresholds: Option<Json<Threshold>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HealthStateRecord {
    pub host: String,
    pub check_name: String,
    pub status: Status,
    pub since: Timestamp,
    pub candidate: Option<Status>,
    pub candidate_since: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HealthEventRecord {
    pub id: i64,
    pub host: String,
    pub check_name: String,
    pub from_status: Status,
    pub to_status: Status,
    pub message: String,
    pub at: Timestamp,
}

impl Store {
    pub async fn health_runs(&self, host: Option<&str>, limit: u32) -> Result<Vec<HealthRunRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HealthRunRecord>(
                "SELECT id, host, status, started_at, finished_at FROM health_runs WHERE ($1 IS NULL OR host = $1) \
                 ORDER BY finished_at DESC LIMIT $2",
            )
            .bind(host)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }

    pub async fn health_run(&self, id: OperationId) -> Result<(HealthRunRecord, Vec<HealthResultRecord>)> {
        let run: Option<HealthRunRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HealthRunRecord>(
                "SELECT id, host, status, started_at, finished_at FROM health_runs WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        let run = run.ok_or_else(|| crate::Error::not_found("health_run_not_found", format!("health run {id}")))?;
        let results: Vec<HealthResultRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HealthResultRecord>(
                "SELECT check_name, status, raw_status, message, value, unit, thresholds FROM health_results \
                 WHERE run_id = $1 ORDER BY check_name",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })?;
        Ok((run, results))
    }

    pub async fn health_states(&self, host: Option<&str>) -> Result<Vec<HealthStateRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HealthStateRecord>(
                "SELECT host, check_name, status, since, candidate, candidate_since FROM health_state \
                 WHERE ($1 IS NULL OR host = $1) ORDER BY host, check_name",
            )
            .bind(host)
            .fetch_all(pool)
            .await
        })?)
    }

    pub async fn health_events(&self, limit: u32) -> Result<Vec<HealthEventRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HealthEventRecord>(
                "SELECT id, host, check_name, from_status, to_status, message, at FROM health_events ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }
}

impl Store {
    /// The newest check transitions on one host.
    pub async fn host_health_events(&self, host: &str, limit: u32) -> Result<Vec<HealthEventRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HealthEventRecord>(
                "SELECT id, host, check_name, from_status, to_status, message, at FROM health_events WHERE host = $1 \
                 ORDER BY id DESC LIMIT $2",
            )
            .bind(host)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }
}

impl HealthStateRecord {
    pub fn check_state(&self) -> CheckState {
        CheckState { status: self.status, since: self.since, candidate: self.candidate.zip(self.candidate_since) }
    }
}

impl super::Tx {
    /// Opens run `id` (status `ok` until [`super::Tx::close_health_run`]).
    pub async fn insert_health_run(&mut self, id: OperationId, host: &str, started_at: Timestamp) -> Result<()> {
        let now = self.now();
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "INSERT INTO health_runs (id, host, status, started_at, finished_at) VALUES ($1, $2, 'ok', $3, $4)",
            )
            .bind(id)
            .bind(host)
            .bind(started_at)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Writes one check's result, its new state and, if it changed, the transition.
    pub async fn record_check(
        &mut self,
        run: OperationId,
        host: &str,
        m: &Measurement,
        state: &CheckState,
        transition: Option<(Status, Status)>,
    ) -> Result<()> {
        let now = self.now();
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "INSERT INTO health_results (run_id, check_name, status, raw_status, message, value, unit, thresholds) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(run)
            .bind(&m.check)
            .bind(state.status.as_str())
            .bind(m.raw.as_str())
            .bind(&m.message)
            .bind(m.value)
            .bind(&m.unit)
            .bind(m.thresholds.map(Json))
            .execute(&mut *c)
            .await?;
            sqlx::query::<Db>(
                "INSERT INTO health_state (host, check_name, status, since, candidate, candidate_since) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host, check_name) DO UPDATE SET status = excluded.status, \
                 since = excluded.since, candidate = excluded.candidate, candidate_since = excluded.candidate_since",
            )
            .bind(host)
            .bind(&m.check)
            .bind(state.status.as_str())
            .bind(state.since)
            .bind(state.candidate.map(|c| c.0.as_str()))
            .bind(state.candidate.map(|c| c.1))
            .execute(&mut *c)
            .await?;
            if let Some((from, to)) = transition {
                sqlx::query::<Db>(
                    "INSERT INTO health_events (host, check_name, from_status, to_status, message, at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(host)
                .bind(&m.check)
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(&m.message)
                .bind(now)
                .execute(&mut *c)
                .await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Sets the run's overall status (the worst of its checks).
    pub async fn close_health_run(&mut self, id: OperationId, worst: Status) -> Result<()> {
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>("UPDATE health_runs SET status = $2 WHERE id = $1")
                .bind(id)
                .bind(worst.as_str())
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
