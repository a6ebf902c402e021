//! `/ui/operations`: the ledger, newest first, with status tabs and filters
//! in the query string (so every view is a link) and cursor paging. It reads
//! through `App::list_operations` with the same filter `/api/v1/operations`
//! builds, so both show the same rows.

use std::sync::Arc;

use hyperfleet_core::{
    OperationId, Timestamp,
    auth::Role,
    operation::{ErrorClass, Operation, OperationKind, OperationStatus},
    store::OperationFilter,
    vm::{HostName, VmName},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Query},
};

use super::{
    bulk,
    events::Feed,
    layout::{error_page, html_response, page, time},
    session,
};
use crate::AppState;

pub use super::operation::{cancel, detail, fragment, retry};

/// The list's query string, as typed into the filter form.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ListQuery {
    pub(super) status: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) host: Option<String>,
    pub(super) vm: Option<String>,
    pub(super) error_class: Option<String>,
    pub(super) requested_by: Option<String>,
    pub(super) error_text: Option<String>,
    pub(super) since: Option<String>,
    pub(super) until: Option<String>,
    pub(super) cursor: Option<String>,
    pub(super) limit: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The query string parsed into the ledger's filter: the API's rules exactly.
pub(super) fn filter_of(q: &ListQuery) -> hyperfleet_core::Result<OperationFilter> {
    let limit = given(&q.limit)
        .map(|l| {
            l.parse::<u32>().map_err(|_| hyperfleet_core::Error::invalid("invalid_limit", "`limit` must be 1-500"))
        })
        .transpose()?;
    Ok(OperationFilter {
        status: given(&q.status).map(OperationStatus::parse).transpose()?,
        kind: given(&q.kind).map(OperationKind::parse).transpose()?,
        host: given(&q.host).map(HostName::parse).transpose()?.map(HostName::into_string),
        vm: given(&q.vm).map(|v| VmName::parse(v).map(|n| n.as_str().to_owned())).transpose()?,
        since: given(&q.since).map(|t| instant("since", t)).transpose()?,
        until: given(&q.until).map(|t| instant("until", t)).transpose()?,
        error_class: given(&q.error_class).map(ErrorClass::parse).transpose()?,
        requested_by: given(&q.requested_by).map(requester).transpose()?,
        error_text: given(&q.error_text).map(error_text).transpose()?,
        cursor: given(&q.cursor).map(OperationId::parse).transpose()?,
        limit: crate::operations::page_limit(limit)?,
    })
}

/// A time as the API takes it (RFC 3339), or as a browser's
/// `datetime-local` field sends it (`2026-11-30T14:05`, taken as UTC).
fn instant(name: &'static str, text: &str) -> hyperfleet_core::Result<Timestamp> {
    let code = if name == "since" { "invalid_since" } else { "invalid_until" };
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").map(|t| t.and_utc()))
        .map(Timestamp)
        .map_err(|_| {
            hyperfleet_core::Error::invalid(
                code,
                format!("`{name}` must be an RFC 3339 time or YYYY-MM-DDTHH:MM (UTC)"),
            )
        })
}

/// `requested_by` under the API's pattern `^[A-Za-z0-9._@:-]{1,80}$`.
fn requester(text: &str) -> hyperfleet_core::Result<String> {
    let ok = text.len() <= 80 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@:-".contains(&b));
    ok.then(|| text.to_owned()).ok_or_else(|| {
        hyperfleet_core::Error::invalid("invalid_requested_by", "`requested_by` is 1-80 of A-Z a-z 0-9 . _ @ : -")
    })
}

/// `error_text` under the API's limit (1-200 characters).
fn error_text(text: &str) -> hyperfleet_core::Result<String> {
    (text.chars().count() <= 200)
        .then(|| text.to_owned())
        .ok_or_else(|| hyperfleet_core::Error::invalid("invalid_error_text", "`error_text` is at most 200 characters"))
}

/// A query-string value, percent-encoded but for RFC 3986's unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The list's URL for `f` with `status`.
fn link(f: &OperationFilter, status: Option<OperationStatus>, cursor: Option<OperationId>) -> String {
    let mut parts = Vec::new();
    if let Some(s) = status {
        parts.push(format!("status={}", s.as_str()));
    }
    if let Some(k) = f.kind {
        parts.push(format!("kind={}", k.as_str()));
    }
    if let Some(h) = &f.host {
        parts.push(format!("host={h}"));
    }
    if let Some(v) = &f.vm {
        parts.push(format!("vm={v}"));
    }
    if let Some(c) = f.error_class {
        parts.push(format!("error_class={}", c.as_str()));
    }
    if let Some(r) = &f.requested_by {
        parts.push(format!("requested_by={}", encode(r)));
    }
    if let Some(t) = &f.error_text {
        parts.push(format!("error_text={}", encode(t)));
    }
    if let Some(t) = f.since {
        parts.push(format!("since={}", encode(&t.0.to_rfc3339())));
    }
    if let Some(t) = f.until {
        parts.push(format!("until={}", encode(&t.0.to_rfc3339())));
    }
    if f.limit != 50 {
        parts.push(format!("limit={}", f.limit));
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={c}"));
    }
    if parts.is_empty() { "/ui/operations".to_owned() } else { format!("/ui/operations?{}", parts.join("&")) }
}

fn tabs(f: &OperationFilter) -> Markup {
    html! {
        nav.tabs {
            a href=(link(f, None, None)) class=[f.status.is_none().then_some("current")] { "all" }
            @for s in OperationStatus::ALL {
                a href=(link(f, Some(*s), None)) class=[(f.status == Some(*s)).then_some("current")] { (s.as_str()) }
            }
        }
    }
}

fn filters(f: &OperationFilter) -> Markup {
    html! {
        form.filters method="get" action="/ui/operations" {
            @if let Some(s) = f.status { input type="hidden" name="status" value=(s.as_str()); }
            label { "kind " select name="kind" {
                option value="" { "any" }
                @for k in OperationKind::ALL {
                    option value=(k.as_str()) selected[f.kind == Some(*k)] { (k.as_str()) }
                }
            } }
            label { "host " input type="text" name="host" value=[f.host.as_deref()]; }
            label { "VM " input type="text" name="vm" value=[f.vm.as_deref()]; }
            label { "error class " select name="error_class" {
                option value="" { "any" }
                @for c in ErrorClass::ALL {
                    option value=(c.as_str()) selected[f.error_class == Some(*c)] { (c.as_str()) }
                }
            } }
            label { "requested by " input type="text" name="requested_by" maxlength="80" value=[f.requested_by.as_deref()]; }
            label { "error contains " input type="search" name="error_text" maxlength="200" value=[f.error_text.as_deref()]; }
            label { "created from " input type="datetime-local" name="since" value=[f.since.map(local)]; }
            label { "to " input type="datetime-local" name="until" value=[f.until.map(local)]; }
            span.hint { "(UTC)" }
            button type="submit" { "Filter" }
        }
    }
}

/// A time as a `datetime-local` field shows it (UTC, to the minute).
fn local(t: Timestamp) -> String {
    t.0.format("%Y-%m-%dT%H:%M").to_string()
}

/// How long it ran (or has run so far), to the second.
fn duration(op: &Operation, now: Timestamp) -> String {
    let Some(started) = op.started_at else { return String::new() };
    let secs = (op.finished_at.unwrap_or(now).millis_since(started) / 1000.0).max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

/// One operation as a table row: the same markup for the full page and for
/// the live fragment. `selectable` adds the bulk-action checkbox (operators).
pub fn row(op: &Operation, selectable: bool, now: Timestamp) -> Markup {
    let target = match (&op.host, &op.vm) {
        (Some(h), Some(v)) => format!("{h}/{v}"),
        (Some(h), None) => h.clone(),
        (None, Some(v)) => v.clone(),
        (None, None) => "—".to_owned(),
    };
    html! {
        tr data-id=(op.id) data-status=(op.status.as_str()) {
            @if selectable {
                td.select { input type="checkbox" name="id" value=(op.id) form="bulk" aria-label="select"; }
            }
            td { a.id href={ "/ui/operations/" (op.id) } { (op.id) } }
            td { (op.kind.as_str()) }
            td { (target) }
            td { span class={ "status " (op.status.as_str()) } { (op.status.as_str()) } }
            td { (op.attempt_count) "/" (op.max_attempts) }
            td { (op.requested_by) }
            td { (time(op.created_at)) }
            td.duration { (duration(op, now)) }
            td.error { (op.last_error.as_deref().unwrap_or("")) }
        }
    }
}

/// The table's head; `selectable` adds the select-all box of the bulk actions.
fn head(selectable: bool) -> Markup {
    html! {
        thead { tr {
            @if selectable { th.select { input #select-all type="checkbox" aria-label="select all on this page"; } }
            th { "id" } th { "kind" } th { "target" } th { "status" } th { "attempts" }
            th { "requested by" } th { "created" } th { "duration" } th { "last error" }
        } }
    }
}

/// The list's filter as query-string pairs without the cursor: what the
/// page's script sends with a fragment request for rows new to the page.
fn filter_query(f: &OperationFilter) -> String {
    link(f, f.status, None).split_once('?').map(|(_, q)| q.to_owned()).unwrap_or_default()
}

#[handler]
pub async fn list(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(feed): Data<&Arc<Feed>>,
    query: Option<Query<ListQuery>>,
) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let filter = match filter_of(&query) {
        Ok(f) => f,
        Err(e) => return error_page(Some(&who), e),
    };
    // Taken before reading: the page has seen every change up to here.
    let position = feed.position();
    let page_ = match state.app.list_operations(&filter).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(&who), e),
    };
    let selectable = who.can(Role::Operator);
    let now = state.app.now();
    let body = html! {
        (tabs(&filter))
        (filters(&filter))
        div #live-list data-live="list" data-feed=(position) data-filter=(filter_query(&filter))
            data-first-page=(filter.cursor.is_none()) {
            p #new-bar.new-bar hidden {
                button #show-new type="button" { span #new-count { "0" } " new — show" }
            }
            @if selectable { (bulk::controls(&who, &filter)) }
            table.operations {
                (head(selectable))
                tbody #rows { @for op in &page_.items { (row(op, selectable, now)) } }
            }
            @if page_.items.is_empty() { p.empty { "No operations match." } }
        }
        @if let Some(next) = page_.next_cursor {
            p.paging { a rel="next" href=(link(&filter, filter.status, Some(next))) { "Older →" } }
        }
    };
    html_response(StatusCode::OK, page("Operations", Some(&who), body))
}

/// `?ids=` for the rows fragment, with the list's filter.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RowsQuery {
    ids: Option<String>,
    #[serde(flatten)]
    list: ListQuery,
}

/// Rows one fragment renders at most.
const FRAGMENT_ROWS: usize = 100;

/// `GET /ui/operations/rows?ids=…[&filter]`: the rows of those operations
/// that match the filter, as the list renders them — what a live page swaps
/// in for a changed row or holds back as "new".
#[handler]
pub async fn rows(req: &Request, Data(state): Data<&AppState>, query: Option<Query<RowsQuery>>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let parsed = filter_of(&query.list).and_then(|filter| {
        let ids = query.ids.as_deref().unwrap_or_default().split(',').filter(|s| !s.is_empty());
        let ids = ids.take(FRAGMENT_ROWS).map(OperationId::parse).collect::<hyperfleet_core::Result<Vec<_>>>()?;
        Ok((filter, ids))
    });
    let (filter, ids) = match parsed {
        Ok(p) => p,
        Err(e) => return error_page(Some(&who), e),
    };
    let ops = match state.app.operations_by_ids(&ids).await {
        Ok(ops) => ops.into_iter().filter(|op| filter.matches(op)).collect::<Vec<_>>(),
        Err(e) => return error_page(Some(&who), e),
    };
    let (selectable, now) = (who.can(Role::Operator), state.app.now());
    let markup = html! { table { tbody { @for op in &ops { (row(op, selectable, now)) } } } };
    html_response(StatusCode::OK, markup)
}
