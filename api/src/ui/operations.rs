//! `/ui/operations`: the ledger, newest first, with status tabs and filters
//! in the query string (so every view is a link) and cursor paging. It reads
//! through `App::list_operations` with the same filter `/api/v1/operations`
//! builds, so both show the same rows.

use hyperfleet_core::{
    OperationId,
    operation::{Operation, OperationKind, OperationStatus},
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
    layout::{error_page, html_response, page, time},
    session,
};
use crate::AppState;

pub use super::operation::{cancel, detail, retry};

/// The list's query string, as typed into the filter form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    host: Option<String>,
    vm: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The query string parsed into the ledger's filter: the API's rules exactly.
fn filter_of(q: &ListQuery) -> hyperfleet_core::Result<OperationFilter> {
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
        since: None,
        until: None,
        cursor: given(&q.cursor).map(OperationId::parse).transpose()?,
        limit: crate::operations::page_limit(limit)?,
    })
}

/// The list's URL for `f` with `status` (every value is validated, so none needs escaping).
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
            button type="submit" { "Filter" }
        }
    }
}

/// One operation as a table row.
pub fn row(op: &Operation) -> Markup {
    let target = match (&op.host, &op.vm) {
        (Some(h), Some(v)) => format!("{h}/{v}"),
        (Some(h), None) => h.clone(),
        (None, Some(v)) => v.clone(),
        (None, None) => "—".to_owned(),
    };
    html! {
        tr data-id=(op.id) {
            td { a.id href={ "/ui/operations/" (op.id) } { (op.id) } }
            td { (op.kind.as_str()) }
            td { (target) }
            td { span class={ "status " (op.status.as_str()) } { (op.status.as_str()) } }
            td { (op.attempt_count) "/" (op.max_attempts) }
            td { (op.requested_by) }
            td { (time(op.created_at)) }
            td.error { (op.last_error.as_deref().unwrap_or("")) }
        }
    }
}

#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>, query: Option<Query<ListQuery>>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let filter = match filter_of(&query) {
        Ok(f) => f,
        Err(e) => return error_page(Some(&who), e),
    };
    let page_ = match state.app.list_operations(&filter).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(&who), e),
    };
    let body = html! {
        (tabs(&filter))
        (filters(&filter))
        @if page_.items.is_empty() {
            p.empty { "No operations match." }
        } @else {
            table.operations {
                thead { tr {
                    th { "id" } th { "kind" } th { "target" } th { "status" } th { "attempts" }
                    th { "requested by" } th { "created" } th { "last error" }
                } }
                tbody { @for op in &page_.items { (row(op)) } }
            }
        }
        @if let Some(next) = page_.next_cursor {
            p.paging { a rel="next" href=(link(&filter, filter.status, Some(next))) { "Older →" } }
        }
    };
    html_response(StatusCode::OK, page("Operations", Some(&who), body))
}
