//! The rest of the seed system's API: its health status, a health run on
//! demand, and recent alerts — in the seed's shapes (its
//! `health-status.json` and `alerts.log` lines), over the ledger's data.
//! Deprecated: use `/api/v1/health` and `/api/v1/alerts`.

use std::{collections::BTreeMap, time::Duration};

use hyperfleet_core::{
    health::Status,
    operation::OperationStatus,
    store::{AlertFilter, HealthResultRecord, HealthRunRecord},
};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
    seed::{SeedCommand, SeedCommandResult},
};

pub struct SeedHealthApi {
    pub state: AppState,
}

/// One check, as the seed's health script wrote it.
#[derive(Debug, Clone, Object)]
pub struct SeedCheck {
    /// `OK`, `WARN` or `ERROR`.
    pub status: String,
    pub message: String,
}

/// The seed's `health-status.json`: the latest state of one host's checks.
#[derive(Debug, Clone, Object)]
pub struct SeedHealthStatus {
    /// When the host's checks last changed or ran (RFC 3339).
    pub timestamp: String,
    pub hostname: String,
    /// `OK`, `WARN` or `ERROR`: the worst check.
    pub overall_status: String,
    pub critical_errors: u32,
    pub warnings: u32,
    pub checks: BTreeMap<String, SeedCheck>,
}

#[derive(Debug, Clone, Object)]
pub struct SeedHealthAnswer {
    pub success: bool,
    #[oai(skip_serializing_if_is_none)]
    pub data: Option<SeedHealthStatus>,
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct SeedAlertLines {
    pub success: bool,
    /// Up to 50 lines, oldest first: `[time] [SEVERITY] title: message`.
    pub data: Vec<String>,
}

#[derive(Debug, ApiResponse)]
pub enum SeedHealth {
    /// `success: false` with `error` when no host has run its checks yet (as the seed did).
    #[oai(status = 200)]
    Ok(Json<SeedHealthAnswer>),
}

#[derive(Debug, ApiResponse)]
pub enum SeedAlerts {
    #[oai(status = 200)]
    Ok(Json<SeedAlertLines>),
}

fn seed_status(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warn => "WARN",
        Status::Error => "ERROR",
    }
}

/// The seed's exit codes: 0 OK, 1 WARN, 2 ERROR.
fn return_code(s: Status) -> i32 {
    match s {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Error => 2,
    }
}

/// A health run in the shape of the seed's `health-status.json`.
fn status_of(run: &HealthRunRecord, results: Vec<HealthResultRecord>) -> SeedHealthStatus {
    let count = |status| results.iter().filter(|r| r.status == status).count() as u32;
    SeedHealthStatus {
        timestamp: run.finished_at.0.to_rfc3339(),
        hostname: run.host.clone(),
        overall_status: seed_status(run.status).to_owned(),
        critical_errors: count(Status::Error),
        warnings: count(Status::Warn),
        checks: results
            .into_iter()
            .map(|r| (r.check_name, SeedCheck { status: seed_status(r.status).to_owned(), message: r.message }))
            .collect(),
    }
}

#[OpenApi(prefix_path = "/api", tag = "Tag::Seed")]
impl SeedHealthApi {
    /// The latest health status of the host that ran its checks last (the seed's `/api/health/status`).
    #[oai(path = "/health/status", method = "get", operation_id = "seed_health_status", deprecated)]
    async fn status(&self, _auth: ViewerAuth) -> ApiResult<SeedHealth> {
        let app = &self.state.app;
        let Some(run) = app.health_runs(None, 1).await?.into_iter().next() else {
            let error = Some("No health status available".to_owned());
            return Ok(SeedHealth::Ok(Json(SeedHealthAnswer { success: false, data: None, error })));
        };
        let (run, results) = app.health_run(run.id).await?;
        let data = status_of(&run, results);
        Ok(SeedHealth::Ok(Json(SeedHealthAnswer { success: true, data: Some(data), error: None })))
    }

    /// Run the health checks on every host now and wait for them (the seed's `/api/health/run`):
    /// `success` when every host is OK; `returncode` 0 OK, 1 WARN, 2 ERROR, -1 not finished.
    #[oai(path = "/health/run", method = "post", operation_id = "seed_health_run", deprecated)]
    async fn run(&self, auth: OperatorAuth) -> ApiResult<SeedCommand> {
        let app = &self.state.app;
        let origin = self.state.origin(&auth.0, None)?;
        let submitted = app.request_health_runs(None, origin).await?;
        let (mut lines, mut errors, mut worst, mut finished) = (Vec::new(), Vec::new(), Status::Ok, true);
        for s in &submitted {
            let op = app.wait_finished(s.operation.id, Duration::from_secs(60)).await?;
            let host = op.host.clone().unwrap_or_default();
            match op.status {
                OperationStatus::Succeeded => {
                    let (run, results) = app.health_run(op.id).await?;
                    worst = worst.max(run.status);
                    lines.push(format!("{host}: {} ({} checks)", seed_status(run.status), results.len()));
                    for r in results.iter().filter(|r| r.status != Status::Ok) {
                        errors.push(format!("{host}: {}: {}", r.check_name, r.message));
                    }
                }
                OperationStatus::Failed | OperationStatus::Cancelled => {
                    errors.push(format!("{host}: {}", op.last_error.unwrap_or_else(|| op.status.to_string())));
                    worst = Status::Error;
                }
                _ => {
                    errors.push(format!("{host}: still {} (see operation {})", op.status, op.id));
                    finished = false;
                }
            }
        }
        let returncode = if finished { return_code(worst) } else { -1 };
        Ok(SeedCommand::Done(Json(SeedCommandResult {
            success: finished && worst == Status::Ok,
            output: lines.join("\n"),
            error: errors.join("\n"),
            returncode,
            operation_id: submitted.first().map(|s| s.operation.id.to_string()).unwrap_or_default(),
        })))
    }

    /// The 50 most recent alerts as log lines, oldest first (the seed's `/api/alerts/recent`).
    #[oai(path = "/alerts/recent", method = "get", operation_id = "seed_alerts_recent", deprecated)]
    async fn recent(&self, _auth: ViewerAuth) -> ApiResult<SeedAlerts> {
        let filter = AlertFilter { limit: 50, ..AlertFilter::default() };
        let page = self.state.app.alerts(&filter).await?;
        let data = page
            .items
            .iter()
            .rev()
            .map(|a| {
                let severity = a.severity.as_str().to_ascii_uppercase();
                format!("[{}] [{severity}] {}: {}", a.last_seen.0.format("%Y-%m-%d %H:%M:%S"), a.title, a.message)
            })
            .collect();
        Ok(SeedAlerts::Ok(Json(SeedAlertLines { success: true, data })))
    }
}
