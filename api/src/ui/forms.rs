//! What the pages' forms share: reading optional query fields, and the
//! ledger origin of an operation started from the dashboard (the token's name,
//! as the API records it).

use hyperfleet_core::{app::Origin, auth::Role};
use poem::{Request, Response};

use super::{
    layout::{error_page, html_response, page, see_other},
    session::{self, UiSession},
};
use crate::{AppState, request_id::current_request_id};

/// A dashboard page that reads: checks the session, runs `read` as the
/// signed-in token and shows its body in the layout under `title` — or
/// shows why it could not be read.
pub async fn get(
    req: &Request,
    state: &AppState,
    title: &str,
    read: impl AsyncFnOnce(&UiSession) -> hyperfleet_core::Result<maud::Markup>,
) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    match read(&who).await {
        Ok(body) => html_response(poem::http::StatusCode::OK, page(title, Some(&who), body)),
        Err(e) => error_page(Some(&who), e),
    }
}

/// The link to a list's next page, when there is one.
pub fn paging(next: Option<String>, label: &str) -> maud::Markup {
    maud::html! { @if let Some(href) = next { p.paging { a rel="next" href=(href) { (label) } } } }
}

/// A dashboard POST that changes one thing: checks the session, the CSRF
/// token and the role, runs `act` as the signed-in token, then sends the
/// browser to the page `act` names — or shows why it could not be done.
pub async fn post(
    req: &Request,
    state: &AppState,
    csrf: Option<&str>,
    role: Role,
    act: impl AsyncFnOnce(&UiSession) -> hyperfleet_core::Result<String>,
) -> Response {
    let who = match session::check_post(req, state, csrf, role).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    match act(&who).await {
        Ok(location) => see_other(&location),
        Err(e) => error_page(Some(&who), e),
    }
}

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
