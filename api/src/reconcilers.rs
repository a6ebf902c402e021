//! The scheduler's reconcilers and their last runs: what fired, routed and
//! monitored, when, and what failed — readable, not only logged.

use chrono::{DateTime, Utc};
use hyperfleet_core::store::ReconcilerRun;
use poem_openapi::{Object, OpenApi, payload::Json};

use crate::{AppState, Tag, auth::ViewerAuth, error::ApiResult};

pub struct ReconcilersApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
pub struct ReconcilerView {
    /// `fire_schedules`, `route_alerts`, `fleet_monitor` or `audit_checkpoint`.
    pub name: String,
    /// The scheduler process that ran it last.
    pub scheduler: String,
    pub last_run_at: DateTime<Utc>,
    pub duration_ms: f64,
    /// Whether the last run succeeded.
    pub ok: bool,
    /// What the last run did.
    pub summary: String,
    /// The last error, kept after later runs succeed.
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub last_error_at: Option<DateTime<Utc>>,
    pub runs: i64,
    pub failures: i64,
}

impl From<ReconcilerRun> for ReconcilerView {
    fn from(r: ReconcilerRun) -> Self {
        Self {
            name: r.name,
            scheduler: r.scheduler,
            last_run_at: r.last_run_at.0,
            duration_ms: r.duration_ms,
            ok: r.ok,
            summary: r.summary,
            last_error: r.error,
            last_error_at: r.last_error_at.map(|t| t.0),
            runs: r.runs,
            failures: r.failures,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct ReconcilerListView {
    pub items: Vec<ReconcilerView>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Schedules")]
impl ReconcilersApi {
    /// The scheduler's reconcilers (fire schedules, route alerts, monitor the
    /// fleet) with their last run. Empty until a scheduler has run.
    #[oai(path = "/reconcilers", method = "get", operation_id = "reconciler_list")]
    async fn list(&self, _auth: ViewerAuth) -> ApiResult<Json<ReconcilerListView>> {
        let items = self.state.app.reconciler_runs().await?.into_iter().map(ReconcilerView::from).collect();
        Ok(Json(ReconcilerListView { items }))
    }
}
