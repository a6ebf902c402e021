//! `/ui/operations/{id}`: one operation — its attempts as a timeline, its
//! params and result — and, for operators, cancel and retry as
//! CSRF-protected forms that POST to the same use cases as the API.

use hyperfleet_core::{
    OperationId,
    auth::Role,
    operation::{Attempt, Operation, OperationStatus},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form, Path},
};

use super::{
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

fn render(who: &UiSession, op: &Operation, attempts: &[Attempt]) -> Markup {
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
            @for a in attempts { (attempt_row(a)) }
            @if let Some(t) = op.finished_at { li { (op.status.as_str()) " " (time(t)) } }
        }
        h2 { "Params" }
        (json_block(&op.params))
        @if let Some(result) = &op.result {
            h2 { "Result" }
            (json_block(result))
        }
    }
}

#[handler]
pub async fn detail(req: &Request, Path(id): Path<String>, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let id = match OperationId::parse(&id) {
        Ok(id) => id,
        Err(e) => return error_page(Some(&who), e),
    };
    let read =
        async { Ok::<_, hyperfleet_core::Error>((state.app.operation(id).await?, state.app.attempts(id).await?)) };
    match read.await {
        Ok((op, attempts)) => {
            let title = format!("Operation {}", op.id);
            html_response(StatusCode::OK, page(&title, Some(&who), render(&who, &op, &attempts)))
        }
        Err(e) => error_page(Some(&who), e),
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
