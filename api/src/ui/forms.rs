//! What the pages' forms share: reading optional query fields, and the
//! ledger origin of an operation started from the dashboard (the token's name,
//! as the API records it).

use hyperfleet_core::app::Origin;

use super::session::UiSession;
use crate::{AppState, request_id::current_request_id};

/// A query field that was filled in, trimmed.
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// An operation requested by this session's token.
pub fn origin(state: &AppState, who: &UiSession) -> Origin {
    Origin {
        requested_by: who.principal.name.clone(),
        request_id: Some(current_request_id()),
        idempotency_key: None,
        max_attempts: state.max_attempts,
    }
}

/// A form that carries only the CSRF token and, for irreversible actions,
/// the confirmation page's answer.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ActionForm {
    pub csrf: Option<String>,
    pub confirmed: Option<String>,
}
