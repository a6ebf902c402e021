//! Liveness and readiness probes.

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::{AppState, Tag, error::ErrorBody, error::body};

pub struct SystemApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
pub struct Probe {
    pub status: String,
}

#[derive(Debug, ApiResponse)]
pub enum Readiness {
    /// The database answers and every migration is applied.
    #[oai(status = 200)]
    Ready(Json<Probe>),
    /// Not ready; the body says why.
    #[oai(status = 503)]
    NotReady(Json<ErrorBody>),
}

#[OpenApi(tag = "Tag::System")]
impl SystemApi {
    /// The process is alive.
    #[oai(path = "/healthz", method = "get", operation_id = "system_healthz")]
    async fn healthz(&self) -> Json<Probe> {
        Json(Probe { status: "ok".into() })
    }

    /// The database answers, migrations are current and the disk has room.
    /// Answers within a second whatever the database does; a 503 names why
    /// (`database_unavailable`, `storage_full`, `not_ready`).
    #[oai(path = "/readyz", method = "get", operation_id = "system_readyz")]
    async fn readyz(&self) -> Readiness {
        match self.state.app.readiness().await {
            Ok(()) => Readiness::Ready(Json(Probe { status: "ready".into() })),
            Err(e) => {
                // The probe is public: the cause (which can quote the
                // database's own error text) goes to the log only.
                let code = e.code();
                tracing::warn!(code, error = %e, "not ready");
                Readiness::NotReady(body(code, not_ready_message(code)))
            }
        }
    }
}

/// What a caller without a token is told about a failed readiness check.
fn not_ready_message(code: &str) -> &'static str {
    match code {
        "storage_full" => "the database's disk is full",
        "database_unavailable" => "the database is unavailable",
        _ => "the database is not ready; the server log says why",
    }
}
