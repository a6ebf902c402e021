//! `/api/v1/health`: health runs per host, every check's result, and the
//! current state of the fleet.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hyperfleet_core::{
    OperationId,
    health::Status,
    operation::{OperationKind, OperationStatus},
    store::{HealthEventRecord, HealthResultRecord, HealthRunRecord, HealthStateRecord},
};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
    views::OperationView,
};

pub struct HealthApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
pub struct HealthCheckView {
    pub check: String,
    // After hysteresis.
    pub status: Status,
    /// This run's own verdict before hysteresis (`hold`: between the clear and warn thresholds).
    pub raw_status: String,
    pub message: String,
    #[oai(skip_serializing_if_is_none)]
    pub value: Option<f64>,
    #[oai(skip_serializing_if_is_none)]
    pub unit: Option<String>,
    /// `{warn, error, clear, for_s}` used for this measurement.
    #[oai(skip_serializing_if_is_none)]
    pub thresholds: Option<serde_json::Value>,
}

impl From<HealthResultRecord> for HealthCheckView {
    fn from(r: HealthResultRecord) -> Self {
        Self {
            check: r.check_name,
            status: r.status,
            raw_status: r.raw_status,
            message: r.message,
            value: r.value,
            unit: r.unit,
            thresholds: r.thresholds.map(|t| serde_json::to_value(t.0).unwrap_or_default()),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct HealthRunView {
    /// The `health.run` operation's id.
    pub id: uuid::Uuid,
    pub host: String,
    // The worst check status; absent until the run has recorded its checks.
    #[oai(skip_serializing_if_is_none)]
    pub status: Option<Status>,
    pub started_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Every check (on `health_run_get` only).
    #[oai(skip_serializing_if_is_none)]
    pub checks: Option<Vec<HealthCheckView>>,
    // The `health.run` operation's status, while the run has no checks recorded
    // (queued, running, retrying, or failed without measuring).
    #[oai(skip_serializing_if_is_none)]
    pub operation_status: Option<OperationStatus>,
}

impl From<HealthRunRecord> for HealthRunView {
    fn from(r: HealthRunRecord) -> Self {
        Self {
            id: r.id.0,
            host: r.host,
            status: Some(r.status),
            started_at: r.started_at.0,
            finished_at: Some(r.finished_at.0),
            checks: None,
            operation_status: None,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct HealthRunListView {
    pub items: Vec<HealthRunView>,
}

#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct HealthRunRequest {
    /// One host; every host whose worker runs when absent.
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub host: Option<crate::text::Text>,
}

#[derive(Debug, Clone, Object)]
pub struct OperationListView {
    pub items: Vec<OperationView>,
}

#[derive(Debug, ApiResponse)]
pub enum HealthRunsAccepted {
    /// One `health.run` operation per host, queued.
    #[oai(status = 202)]
    Accepted(Json<OperationListView>),
}

#[derive(Debug, Clone, Object)]
pub struct CheckStateView {
    pub check: String,
    pub status: Status,
    pub since: DateTime<Utc>,
    // A worse status measured but not yet held for its `for_s`.
    #[oai(skip_serializing_if_is_none)]
    pub pending: Option<Status>,
    #[oai(skip_serializing_if_is_none)]
    pub pending_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Object)]
pub struct HostHealthView {
    pub host: String,
    pub status: Status,
    pub checks: Vec<CheckStateView>,
}

#[derive(Debug, Clone, Object)]
pub struct HealthEventView {
    pub id: i64,
    pub host: String,
    pub check: String,
    pub from_status: Status,
    pub to_status: Status,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl From<HealthEventRecord> for HealthEventView {
    fn from(e: HealthEventRecord) -> Self {
        Self {
            id: e.id,
            host: e.host,
            check: e.check_name,
            from_status: e.from_status,
            to_status: e.to_status,
            message: e.message,
            at: e.at.0,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct HealthOverviewView {
    // The worst status over every host.
    pub status: Status,
    pub hosts: Vec<HostHealthView>,
    /// The latest transitions, newest first.
    pub events: Vec<HealthEventView>,
}

fn worst(statuses: impl Iterator<Item = Status>) -> Status {
    statuses.max().unwrap_or(Status::Ok)
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Health")]
impl HealthApi {
    /// Run the health checks now, on one host or on every host.
    #[oai(path = "/health/runs", method = "post", operation_id = "health_run_create")]
    async fn create(&self, auth: OperatorAuth, body: Json<Option<HealthRunRequest>>) -> ApiResult<HealthRunsAccepted> {
        let host = body.0.and_then(|b| b.host);
        let origin = self.state.origin(&auth.0, None)?;
        let submitted = self.state.app.request_health_runs(host.as_deref(), origin).await?;
        let items = submitted.into_iter().map(|s| OperationView::from(s.operation)).collect();
        Ok(HealthRunsAccepted::Accepted(Json(OperationListView { items })))
    }

    /// Health runs, newest first.
    #[oai(path = "/health/runs", method = "get", operation_id = "health_run_list")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        /// Only this host's runs.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        host: Query<Option<String>>,
        /// 1-500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<HealthRunListView>> {
        let limit = crate::operations::page_limit(limit.0)?;
        let runs = self.state.app.health_runs(host.0.as_deref(), limit).await?;
        Ok(Json(HealthRunListView { items: runs.into_iter().map(HealthRunView::from).collect() }))
    }

    /// One health run with every check.
    #[oai(path = "/health/runs/:id", method = "get", operation_id = "health_run_get")]
    async fn get(&self, _auth: ViewerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<HealthRunView>> {
        let id = OperationId(id.0);
        match self.state.app.health_run(id).await {
            Ok((run, results)) => {
                let mut view = HealthRunView::from(run);
                view.checks = Some(results.into_iter().map(HealthCheckView::from).collect());
                Ok(Json(view))
            }
            // Accepted but not measured yet (or failed without measuring): the run
            // is its operation until then. A succeeded one without results was pruned.
            Err(not_found @ hyperfleet_core::Error::NotFound { .. }) => match self.state.app.operation(id).await {
                Ok(op) if op.kind == OperationKind::HealthRun && op.status != OperationStatus::Succeeded => {
                    Ok(Json(HealthRunView {
                        id: op.id.0,
                        host: op.host.unwrap_or_default(),
                        status: None,
                        started_at: op.started_at.unwrap_or(op.created_at).0,
                        finished_at: op.finished_at.map(|t| t.0),
                        checks: Some(Vec::new()),
                        operation_status: Some(op.status),
                    }))
                }
                _ => Err(not_found.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The current state of every check on every host, and the latest transitions.
    #[oai(path = "/health", method = "get", operation_id = "health_get")]
    async fn overview(&self, _auth: ViewerAuth) -> ApiResult<Json<HealthOverviewView>> {
        let states: Vec<HealthStateRecord> = self.state.app.health_states(None).await?;
        let mut by_host: BTreeMap<String, Vec<CheckStateView>> = BTreeMap::new();
        for s in states {
            by_host.entry(s.host.clone()).or_default().push(CheckStateView {
                check: s.check_name,
                status: s.status,
                since: s.since.0,
                pending: s.candidate,
                pending_since: s.candidate_since.map(|t| t.0),
            });
        }
        let hosts: Vec<HostHealthView> = by_host
            .into_iter()
            .map(|(host, checks)| HostHealthView { status: worst(checks.iter().map(|c| c.status)), host, checks })
            .collect();
        let events = self.state.app.health_events(50).await?.into_iter().map(HealthEventView::from).collect();
        Ok(Json(HealthOverviewView { status: worst(hosts.iter().map(|h| h.status)), hosts, events }))
    }
}
