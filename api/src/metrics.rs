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

/// The separate listener of `metrics.listen`: `GET /metrics` and nothing
/// else, without authentication (bind it where only Prometheus can reach it).
/// The same page as the bearer endpoint, read from the same ledger.
pub fn listener(app: hyperfleet_core::app::App) -> impl poem::Endpoint {
    let page = poem::endpoint::make(move |_| {
        let app = app.clone();
        async move {
            match app.metrics_text().await {
                Ok(text) => {
                    poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: cannot read the ledger");
                    poem::Response::builder()
                        .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                        .content_type("text/plain; charset=utf-8")
                        .body(format!("{}\n", e.code()))
                }
            }
        }
    });
    poem::Route::new().at("/metrics", poem::get(page))
}
