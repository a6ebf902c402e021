//! The answer to anything that enqueues: 202 + `Location` for a new
//! operation, 200 for a replay of the same `Idempotency-Key`.

use hyperfleet_core::{app::App, store::Submitted};
use poem_openapi::{ApiResponse, payload::Json};

use crate::views::OperationView;

#[derive(Debug, ApiResponse)]
pub enum Enqueued {
    /// Accepted: the operation is recorded and queued.
    #[oai(status = 202)]
    Accepted(Json<OperationView>, #[oai(header = "Location")] String),
    /// The same request was already accepted under this `Idempotency-Key`: the same operation.
    #[oai(status = 200)]
    Replayed(Json<OperationView>, #[oai(header = "Location")] String),
}

impl Enqueued {
    /// The answer for `s`, warning when its host's worker is offline.
    pub async fn answer(app: &App, s: Submitted) -> hyperfleet_core::Result<Self> {
        let location = format!("/api/v1/operations/{}", s.operation.id);
        let mut view = OperationView::from(s.operation);
        view.warnings = warnings(app, &view).await?;
        let view = Json(view);
        Ok(if s.replayed { Self::Replayed(view, location) } else { Self::Accepted(view, location) })
    }
}

/// Warnings for an operation that waits on a host whose worker is offline.
pub async fn warnings(app: &App, op: &OperationView) -> hyperfleet_core::Result<Option<Vec<String>>> {
    if !matches!(op.status.as_str(), "queued" | "retrying") {
        return Ok(None);
    }
    let Some(host) = &op.host else { return Ok(None) };
    Ok(app.host_warning(host).await?.map(|w| vec![w]))
}

/// `Idempotency-Key` values: 1–200 visible ASCII characters.
pub fn parse_idempotency_key(key: Option<String>) -> hyperfleet_core::Result<Option<String>> {
    match key {
        Some(k) if k.is_empty() || k.len() > 200 || !k.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(hyperfleet_core::Error::invalid(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-200 visible ASCII characters",
            ))
        }
        other => Ok(other),
    }
}
