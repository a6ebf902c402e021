//! `GET /metrics`: Prometheus's text format, for any viewer token (Prometheus
//! sends it as a bearer token: `authorization: {credentials: …}`).

use poem_openapi::{ApiResponse, OpenApi, payload::PlainText};

use crate::{AppState, Tag, auth::ViewerAuth, error::ApiResult};

pub struct MetricsApi {
    pub state: AppState,
}

#[derive(Debug, ApiResponse)]
pub enum Metrics {
    /// Text exposition format 0.0.4.
    #[oai(status = 200)]
    Ok(PlainText<String>),
}

#[OpenApi(tag = "Tag::System")]
impl MetricsApi {
    /// Counters (kept in the database, exact across workers and restarts) and
    /// the fleet's current figures: operations, queues, workers, VMs, health
    /// checks, firing alerts, schedules.
    #[oai(path = "/metrics", method = "get", operation_id = "system_metrics")]
    async fn metrics(&self, _auth: ViewerAuth) -> ApiResult<Metrics> {
        Ok(Metrics::Ok(PlainText(self.state.app.metrics_text().await?)))
    }
}
