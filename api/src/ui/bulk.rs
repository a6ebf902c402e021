//! `POST /ui/operations/bulk`: operators cancel or retry many operations —
//! the rows they ticked, or all matching the list's filter (at most
//! [`BULK_CAP`], newest first). The first POST answers with a confirmation
//! page that names the count (it works without JavaScript); the confirmed
//! POST applies the action through [`App::bulk`], one operation at a time
//! exactly as the single actions do.
//!
//! [`App::bulk`]: hyperfleet_core::app::App::bulk

use hyperfleet_core::{
    Error, OperationId,
    app::{BULK_CAP, BulkAction, BulkReport},
    auth::Role,
    store::OperationFilter,
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form},
};

use super::{
    layout::{csrf_field, error_page, html_response, message_page, page},
    operations::{ListQuery, filter_of},
    session::{self, UiSession},
};
use crate::{AppState, request_id::current_request_id};

/// The list's filter as hidden fields, so "all matching" means what the reader sees.
fn filter_fields(f: &OperationFilter) -> Markup {
    html! {
        @if let Some(s) = f.status { input type="hidden" name="status" value=(s.as_str()); }
        @if let Some(k) = f.kind { input type="hidden" name="kind" value=(k.as_str()); }
        @if let Some(h) = &f.host { input type="hidden" name="host" value=(h); }
        @if let Some(v) = &f.vm { input type="hidden" name="vm" value=(v); }
        @if let Some(c) = f.error_class { input type="hidden" name="error_class" value=(c.as_str()); }
        @if let Some(r) = &f.requested_by { input type="hidden" name="requested_by" value=(r); }
        @if let Some(t) = &f.error_text { input type="hidden" name="error_text" value=(t); }
        @if let Some(t) = f.since { input type="hidden" name="since" value=(t.0.to_rfc3339()); }
        @if let Some(t) = f.until { input type="hidden" name="until" value=(t.0.to_rfc3339()); }
    }
}

/// The bulk-action bar above the operations table (operators only; the
/// rows' checkboxes belong to this form through their `form` attribute).
pub fn controls(who: &UiSession, f: &OperationFilter) -> Markup {
    html! {
        form #bulk.bulk method="post" action="/ui/operations/bulk" {
            (csrf_field(who))
            (filter_fields(f))
            label { input type="checkbox" name="all" value="1"; " all matching the filter (at most " (BULK_CAP) ")" }
            button type="submit" name="action" value="cancel" { "Cancel selected…" }
            button type="submit" name="action" value="retry" { "Retry selected…" }
        }
    }
}

fn verb(action: BulkAction) -> (&'static str, &'static str) {
    match action {
        BulkAction::Cancel => ("Cancel", "cancelled"),
        BulkAction::Retry => ("Retry", "retried"),
    }
}

/// What the POST asks for.
struct Asked {
    action: BulkAction,
    ids: Vec<OperationId>,
    /// "All matching" found more than [`BULK_CAP`]: only the newest are taken.
    capped: bool,
    confirmed: bool,
}

async fn asked(state: &AppState, form: &[(String, String)]) -> hyperfleet_core::Result<Asked> {
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty());
    let action = BulkAction::parse(get("action").unwrap_or_default())?;
    let (ids, capped) = if get("all") == Some("1") {
        let list = ListQuery {
            status: get("status").map(Into::into),
            kind: get("kind").map(Into::into),
            host: get("host").map(Into::into),
            vm: get("vm").map(Into::into),
            error_class: get("error_class").map(Into::into),
            requested_by: get("requested_by").map(Into::into),
            error_text: get("error_text").map(Into::into),
            since: get("since").map(Into::into),
            until: get("until").map(Into::into),
            cursor: None,
            limit: Some(BULK_CAP.to_string()),
        };
        let page = state.app.list_operations(&filter_of(&list)?).await?;
        (page.items.iter().map(|op| op.id).collect(), page.next_cursor.is_some())
    } else {
        let mut ids = Vec::new();
        for (_, v) in form.iter().filter(|(k, _)| k == "id") {
            let id = OperationId::parse(v)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        (ids, false)
    };
    if ids.is_empty() {
        return Err(Error::invalid("nothing_selected", "Select at least one operation (or all matching the filter)."));
    }
    if ids.len() > BULK_CAP {
        return Err(Error::invalid(
            "too_many_operations",
            format!("A bulk action takes at most {BULK_CAP} operations."),
        ));
    }
    Ok(Asked { action, ids, capped, confirmed: get("confirmed") == Some("yes") })
}

fn confirmation(who: &UiSession, a: &Asked) -> Markup {
    let (verb, _) = verb(a.action);
    let n = a.ids.len();
    let noun = if n == 1 { "operation" } else { "operations" };
    html! {
        p.confirm { (verb) " " strong #bulk-count { (n) } " " (noun) "?" }
        @if a.capped { p.hint { "More operations match the filter; only the newest " (BULK_CAP) " are taken." } }
        form method="post" action="/ui/operations/bulk" {
            (csrf_field(who))
            input type="hidden" name="action" value=(a.action.as_str());
            input type="hidden" name="confirmed" value="yes";
            @for id in &a.ids { input type="hidden" name="id" value=(id); }
            button type="submit" { (verb) " " (n) " " (noun) }
            " " a href="/ui/operations" { "Back" }
        }
        ul.ids { @for id in &a.ids { li { a href={ "/ui/operations/" (id) } { (id) } } } }
    }
}

fn report(action: BulkAction, r: &BulkReport) -> Markup {
    let (_, done) = verb(action);
    html! {
        p.done { strong #bulk-done { (r.done.len()) } " " (done) "." }
        @if !r.done.is_empty() {
            ul.ids { @for (asked, result) in &r.done {
                li { a href={ "/ui/operations/" (asked) } { (asked) }
                    @if asked != result { " → " a href={ "/ui/operations/" (result) } { (result) } } }
            } }
        }
        @if !r.refused.is_empty() {
            h2 { (r.refused.len()) " not " (done) }
            ul.ids { @for (id, why) in &r.refused {
                li { a href={ "/ui/operations/" (id) } { (id) } ": " span.error { (why) } }
            } }
        }
        p { a href="/ui/operations" { "Back to the operations" } }
    }
}

#[handler]
pub async fn bulk(req: &Request, Data(state): Data<&AppState>, form: Option<Form<Vec<(String, String)>>>) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let csrf = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    let who = match session::check_post(req, state, csrf, Role::Operator).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    let asked = match asked(state, &form).await {
        Ok(a) => a,
        Err(e @ Error::InvalidInput { .. }) => {
            return message_page(StatusCode::BAD_REQUEST, Some(&who), &e.to_string());
        }
        Err(e) => return error_page(Some(&who), e),
    };
    let (verb, _) = verb(asked.action);
    if !asked.confirmed {
        return html_response(
            StatusCode::OK,
            page(&format!("{verb} operations"), Some(&who), confirmation(&who, &asked)),
        );
    }
    match state.app.bulk(asked.action, &asked.ids, &who.principal.name, Some(current_request_id())).await {
        Ok(r) => {
            html_response(StatusCode::OK, page(&format!("{verb} operations"), Some(&who), report(asked.action, &r)))
        }
        Err(e) => error_page(Some(&who), e),
    }
}
