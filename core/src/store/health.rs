//! Health runs: each check's result after hysteresis, the per-check state
//! machine, and the transitions (health events) that alerting turns into alerts.

use serde::Serialize;
use sqlx::types::Json;

use super::{Store, alerts::AlertTx, read_db, with_db};
use crate::{
    OperationId, Result, Timestamp,
    alert::{AlertSource, NewAlert, Severity},
    health::{CheckState, Measurement, Status, Threshold, step},
};

/// A check that is `warn` or `error` after hysteresis fires (again, on every
/// run, so that repeats follow the policy); one that returns to `ok` resolves.
async fn alert_check<C: AlertTx>(
    tx: &mut C,
    host: &str,
    m: &Measurement,
    status: Status,
    changed: bool,
    now: Timestamp,
) -> Result<()> {
    let key = format!("health:{host}:{}", m.check);
    let severity = match status {
        // Only a check that just came back can have a firing alert to resolve.
        Status::Ok if changed => {
            tx.resolve_alert(&key, "hyperfleet", &m.message, now).await?;
            return Ok(());
        }
        Status::Ok => return Ok(()),
        Status::Warn => Severity::Warning,
        Status::Error => Severity::Critical,
    };
    let title = format!("Health check {} is {} on {host}", m.check, status.as_str());
    let alert = NewAlert::system(AlertSource::Health, severity, title, m.message.clone())
        .on_host(Some(host))
        .label("check", m.check.clone())
        .dedup(key);
    tx.raise_alert(&alert, now).await?;
    Ok(())
}

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

/// Fleet-wide figures for the fleet checks.
#[derive(Debug, Clone)]
pub struct FleetFigures {
    /// Hosts whose worker missed its heartbeats (not those stopped cleanly).
    pub late_hosts: Vec<String>,
    pub failed_last_hour: i64,
    pub oldest_queued: Option<Timestamp>,
}

impl Store {
    /// Records a run's measurements: applies hysteresis per check, stores
    /// results, state and transitions, in one transaction. Returns the run.
    pub async fn record_health_run(
        &self,
        id: OperationId,
        host: &str,
        started_at: Timestamp,
        measurements: &[Measurement],
    ) -> Result<HealthRunRecord> {
        let now = Timestamp::now();
        let states: Vec<HealthStateRecord> = self.health_states(Some(host)).await?;
        let mut worst = Status::Ok;
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            sqlx::query::<Db>(
                "INSERT INTO health_runs (id, host, status, started_at, finished_at) VALUES ($1, $2, 'ok', $3, $4)",
            )
            .bind(id)
            .bind(host)
            .bind(started_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for m in measurements {
                let prev = states.iter().find(|s| s.check_name == m.check).map(|s| CheckState {
                    status: s.status,
                    since: s.since,
                    candidate: s.candidate.zip(s.candidate_since),
                });
                let (state, transition) = step(prev.as_ref(), m.raw, m.for_s, now);
                worst = worst.max(state.status);
                sqlx::query::<Db>(
                    "INSERT INTO health_results (run_id, check_name, status, raw_status, message, value, unit, thresholds) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(&m.check)
                .bind(state.status.as_str())
                .bind(m.raw.as_str())
                .bind(&m.message)
                .bind(m.value)
                .bind(&m.unit)
                .bind(m.thresholds.map(Json))
                .execute(&mut *tx)
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
                .execute(&mut *tx)
                .await?;
                alert_check(&mut *tx, host, m, state.status, transition.is_some(), now).await?;
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
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query::<Db>("UPDATE health_runs SET status = $2 WHERE id = $1")
                .bind(id)
                .bind(worst.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.wakes.notify(crate::queue::ALERTS);
        Ok(HealthRunRecord { id, host: host.to_owned(), status: worst, started_at, finished_at: now })
    }

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

    pub async fn fleet_figures(&self) -> Result<FleetFigures> {
        let now = Timestamp::now();
        let late_hosts = self
            .hosts()
            .await?
            .into_iter()
            .filter(|h| h.stopped_at.is_none() && !h.online(now))
            .map(|h| h.name)
            .collect();
        let hour_ago = now.minus(std::time::Duration::from_secs(3600));
        let failed_last_hour: i64 = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, i64>(
                "SELECT COUNT(*) FROM operations WHERE status = 'failed' AND finished_at >= $1",
            )
            .bind(hour_ago)
            .fetch_one(pool)
            .await
        })?;
        let oldest_queued: Option<Timestamp> = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, Option<Timestamp>>(
                "SELECT MIN(created_at) FROM operations WHERE status IN ('queued', 'retrying')",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(FleetFigures { late_hosts, failed_last_hour, oldest_queued })
    }
}
