//! The answer to anything that enqueues: 202 + `Location` for a new
//! operation, 200 for a replay of the same `Idempotency-Key`.

use hyperfleet_core::store::Submitted;
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

impl From<Submitted> for Enqueued {
    fn from(s: Submitted) -> Self {
        let location = format!("/api/v1/operations/{}", s.operation.id);
        let view = Json(OperationView::from(s.operation));
        if s.replayed { Self::Replayed(view, location) } else { Self::Accepted(view, location) }
    }
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
