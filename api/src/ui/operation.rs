//! `/ui/operations/{id}`: one operation — its attempts as a timeline, its
//! retry chain, the alerts it raised, its params and result, the same read
//! as a curl command — and, for operators, cancel and retry as
//! CSRF-protected forms that POST to the same use cases as the API. The page
//! is live: its body is re-fetched (`…/fragment`) when the operation changes.

use std::sync::Arc;

use hyperfleet_core::{
    OperationId,
    alert::Alert,
    auth::Role,
    operation::{Attempt, ErrorClass, Operation, OperationStatus},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Form, Path},
};

use super::{
    events::Feed,
    layout::{action_button, error_page, html_response, page, see_other, time},
    session::{self, CsrfForm, UiSession},
};
use crate::{AppState, request_id::current_request_id};

fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    html! { pre.json { (text) } }
}

fn attempt_row(a: &Attempt) -> Markup {
    html! {
        li.attempt {
            strong { "Attempt " (a.attempt) }
            " on " (a.host) " by worker " code { (a.worker) }
            dl {
                dt { "started" } dd { (time(a.started_at)) }
                dt { "ended" } dd { (a.finished_at.map(time).unwrap_or_else(|| "—".into())) }
                dt { "outcome" } dd { (a.outcome.map_or("running", |o| o.as_str())) }
                @if let Some(class) = a.error_class { dt { "error class" } dd { (class.as_str()) } }
                @if let Some(code) = &a.error_code { dt { "error code" } dd { code { (code) } } }
                @if let Some(message) = &a.message { dt { "message" } dd.error { (message) } }
            }
            @if a.error_class == Some(ErrorClass::Abandoned) {
                p.abandoned { "Abandoned: its worker stopped renewing the lease (it stopped or died)." }
            }
        }
    }
}

fn actions(who: &UiSession, op: &Operation) -> Markup {
    let base = format!("/ui/operations/{}", op.id);
    let cancellable =
        matches!(op.status, OperationStatus::Queued | OperationStatus::Running | OperationStatus::Retrying);
    let retryable = matches!(op.status, OperationStatus::Failed | OperationStatus::Cancelled);
    html! {
        div.actions {
            @if cancellable {
                (action_button(who, Role::Operator, &format!("{base}/cancel"), "Cancel", "Cancel this operation?"))
            }
            @if retryable {
                (action_button(who, Role::Operator, &format!("{base}/retry"), "Retry", "Retry as a new operation?"))
            }
        }
    }
}

/// Everything the page shows about one operation.
struct Detail {
    op: Operation,
    attempts: Vec<Attempt>,
    /// The operations it retries, nearest first (`retry_of`, its `retry_of`, …).
    retries_before: Vec<OperationId>,
    /// The operations retrying it, oldest first.
    retried_by: Vec<Operation>,
    alerts: Vec<Alert>,
    /// This server as the browser reached it, for "copy as curl".
    origin: String,
}

/// How far back the page follows a retry chain.
const CHAIN: usize = 20;

/// `http(s)://host` as the request named it, when the host is plain enough
/// to put in a shell command; a variable to fill in otherwise.
fn origin(req: &Request) -> String {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let plain = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c));
    if plain { format!("{}://{host}", req.scheme()) } else { "$HYPERFLEET_URL".to_owned() }
}

fn curl(id: &str, command: &str) -> Markup {
    html! {
        div.curl {
            pre #(id) { (command) }
            button.copy type="button" data-copy={ "#" (id) } { "Copy as curl" }
        }
    }
}

fn render(who: &UiSession, d: &Detail) -> Markup {
    let op = &d.op;
    let auth = r#"-H "Authorization: Bearer $HYPERFLEET_TOKEN""#;
    let url = format!("{}/api/v1/operations/{}", d.origin, op.id);
    html! {
        (actions(who, op))
        dl.facts {
            dt { "status" } dd { span class={ "status " (op.status.as_str()) } { (op.status.as_str()) } }
            dt { "kind" } dd { (op.kind.as_str()) }
            @if let Some(host) = &op.host { dt { "host" } dd { (host) } }
            @if let Some(vm) = &op.vm { dt { "VM" } dd { (vm) } }
            dt { "requested by" } dd { (op.requested_by) }
            dt { "attempts" } dd { (op.attempt_count) "/" (op.max_attempts) }
            dt { "created" } dd { (time(op.created_at)) }
            @if let Some(t) = op.finished_at { dt { "finished" } dd { (time(t)) } }
            @if let Some(prev) = op.retry_of {
                dt { "retry of" } dd { a href={ "/ui/operations/" (prev) } { (prev) } }
            }
            @if let Some(by) = &op.cancelled_by { dt { "cancelled by" } dd { (by) } }
            @if let Some(e) = &op.last_error { dt { "last error" } dd.error { (e) } }
        }
        h2 { "Timeline" }
        ol.timeline {
            li { "created " (time(op.created_at)) " by " (op.requested_by) }
            @for a in &d.attempts { (attempt_row(a)) }
            @if let (OperationStatus::Retrying, Some(t)) = (op.status, op.next_attempt_at) {
                li.next { "next attempt at " (time(t)) }
            }
            @if op.cancel_requested && op.finished_at.is_none() { li { "cancel requested by " (op.cancelled_by.as_deref().unwrap_or("?")) } }
            @if let Some(t) = op.finished_at { li.finished { (op.status.as_str()) " " (time(t)) } }
        }
        @if !d.retries_before.is_empty() || !d.retried_by.is_empty() {
            h2 { "Retry chain" }
            ol.chain {
                @for id in d.retries_before.iter().rev() { li { a href={ "/ui/operations/" (id) } { (id) } } }
                li.current { strong { (op.id) } " (this one)" }
                @for r in &d.retried_by {
                    li { a href={ "/ui/operations/" (r.id) } { (r.id) } " "
                         span class={ "status " (r.status.as_str()) } { (r.status.as_str()) } " by " (r.requested_by) }
                }
            }
        }
        @if !d.alerts.is_empty() {
            h2 { "Alerts" }
            ul.alerts {
                @for alert in &d.alerts {
                    li { span class={ "severity " (alert.severity.as_str()) } { (alert.severity.as_str()) } " "
                         (alert.title) " — " (alert.status.as_str()) ", last seen " (time(alert.last_seen)) }
                }
            }
        }
        h2 { "Params" }
        (json_block(&op.params))
        @if let Some(result) = &op.result {
            h2 { "Result" }
            (json_block(result))
        }
        h2 { "From a shell" }
        (curl("curl-read", &format!("curl {auth} '{url}'")))
        @if who.can(Role::Operator) && matches!(op.status, OperationStatus::Failed | OperationStatus::Cancelled) {
            (curl("curl-retry", &format!("curl -X POST {auth} '{url}/retry'")))
        }
    }
}

/// Everything about operation `id`, or the page to answer instead.
async fn read(state: &AppState, who: &UiSession, req: &Request, id: &str) -> Result<Detail, Response> {
    let id = OperationId::parse(id).map_err(|e| error_page(Some(who), e))?;
    let read = async {
        let op = state.app.operation(id).await?;
        let mut retries_before = Vec::new();
        let mut before = op.retry_of;
        while let Some(prev) = before.filter(|_| retries_before.len() < CHAIN) {
            retries_before.push(prev);
            before = match state.app.operation(prev).await {
                Ok(p) => p.retry_of,
                Err(hyperfleet_core::Error::NotFound { .. }) => None, // pruned by retention
                Err(e) => return Err(e),
            };
        }
        Ok::<_, hyperfleet_core::Error>(Detail {
            attempts: state.app.attempts(id).await?,
            retried_by: state.app.retries_of(id).await?,
            alerts: state.app.alerts_of_operation(id).await?,
            retries_before,
            origin: origin(req),
            op,
        })
    };
    read.await.map_err(|e| error_page(Some(who), e))
}

#[handler]
pub async fn detail(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    Data(feed): Data<&Arc<Feed>>,
) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    // Taken before reading: the page has seen every change up to here.
    let position = feed.position();
    let detail = match read(state, &who, req, &id).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let title = format!("Operation {}", detail.op.id);
    let body = html! {
        div #op-live data-live="operation" data-id=(detail.op.id) data-feed=(position) { (render(&who, &detail)) }
    };
    html_response(StatusCode::OK, page(&title, Some(&who), body))
}

/// `GET /ui/operations/{id}/fragment`: the page's body alone, for a live page to swap in.
#[handler]
pub async fn fragment(req: &Request, Path(id): Path<String>, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    match read(state, &who, req, &id).await {
        Ok(found) => html_response(StatusCode::OK, render(&who, &found)),
        Err(answer) => answer,
    }
}

/// The checks every action passes, then the operation's id.
async fn checked(
    req: &Request,
    state: &AppState,
    id: &str,
    form: Option<Form<CsrfForm>>,
) -> Result<(UiSession, OperationId), Response> {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let who = session::check_post(req, state, form.csrf.as_deref(), Role::Operator).await?;
    let id = OperationId::parse(id).map_err(|e| error_page(Some(&who), e))?;
    Ok((who, id))
}

#[handler]
pub async fn cancel(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<CsrfForm>>,
) -> Response {
    let (who, id) = match checked(req, state, &id, form).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    match state.app.cancel(id, &who.principal.name).await {
        Ok(op) => see_other(&format!("/ui/operations/{}", op.id)),
        Err(e) => error_page(Some(&who), e),
    }
}

#[handler]
pub async fn retry(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<CsrfForm>>,
) -> Response {
    let (who, id) = match checked(req, state, &id, form).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    match state.app.retry(id, &who.principal.name, Some(current_request_id())).await {
        Ok(op) => see_other(&format!("/ui/operations/{}", op.id)),
        Err(e) => error_page(Some(&who), e),
    }
}
