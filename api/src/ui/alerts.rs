//! `/ui/alerts`: alerts newest first (filtered by status and severity in
//! the query string), the silences in force, and one alert's history: its
//! events and every notification, with why a suppressed one was not sent.
//! Operators acknowledge and resolve, as with the API.

use hyperfleet_core::{
    AlertId,
    alert::{Alert, AlertEvent, AlertStatus, Notification, Severity},
    auth::Role,
    store::AlertFilter,
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form, Path, Query},
};

use super::{
    forms::{ActionForm, get, given, paging, post},
    layout::{action_button, error_page, html_response, page, time},
    session,
};
use crate::AppState;

/// History entries shown on an alert's page (the API pages through the rest).
const HISTORY: u32 = 200;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    severity: Option<String>,
    cursor: Option<String>,
}

fn filter_of(q: &ListQuery) -> hyperfleet_core::Result<AlertFilter> {
    Ok(AlertFilter {
        status: given(&q.status).map(|s| AlertStatus::parse(&s)).transpose()?,
        severity: given(&q.severity).map(|s| Severity::parse(&s)).transpose()?,
        cursor: given(&q.cursor).map(|c| AlertId::parse(&c)).transpose()?,
        limit: 50,
        ..Default::default()
    })
}

fn link(f: &AlertFilter, cursor: Option<AlertId>) -> String {
    let mut parts = Vec::new();
    if let Some(s) = f.status {
        parts.push(format!("status={}", s.as_str()));
    }
    if let Some(s) = f.severity {
        parts.push(format!("severity={}", s.as_str()));
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={c}"));
    }
    if parts.is_empty() { "/ui/alerts".to_owned() } else { format!("/ui/alerts?{}", parts.join("&")) }
}

fn filters(f: &AlertFilter) -> Markup {
    html! {
        form.filters method="get" action="/ui/alerts" {
            label { "status " select name="status" {
                option value="" { "any" }
                @for s in AlertStatus::ALL { option value=(s.as_str()) selected[f.status == Some(*s)] { (s.as_str()) } }
            } }
            label { "severity " select name="severity" {
                option value="" { "any" }
                @for s in Severity::ALL { option value=(s.as_str()) selected[f.severity == Some(*s)] { (s.as_str()) } }
            } }
            button type="submit" { "Filter" }
        }
    }
}

fn alert_row(a: &Alert) -> Markup {
    html! {
        tr data-alert=(a.id) {
            td { span class={ "severity " (a.severity.as_str()) } { (a.severity.as_str()) } }
            td { a href={ "/ui/alerts/" (a.id) } { (a.title) } }
            td { (a.source.as_str()) }
            td { (a.host.as_deref().unwrap_or("—")) }
            td { (a.status.as_str()) @if let Some(by) = &a.acknowledged_by { " · acked by " (by) } }
            td { (a.occurrences) }
            td { (time(a.last_seen)) }
        }
    }
}

#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>, query: Option<Query<ListQuery>>) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    get(req, state, "Alerts", async |who| {
        let filter = filter_of(&query)?;
        let (alerts, silences) = (state.app.alerts(&filter).await?, state.app.silences(false).await?);
        Ok(html! {
        (filters(&filter))
        @if alerts.items.is_empty() {
            p.empty { "No alerts match." }
        } @else {
            table.alerts {
                thead { tr {
                    th { "severity" } th { "alert" } th { "source" } th { "host" } th { "status" } th { "count" }
                    th { "last seen" }
                } }
                tbody { @for a in &alerts.items { (alert_row(a)) } }
            }
        }
        (paging(alerts.next_cursor.map(|next| link(&filter, Some(next))), "Older →"))
        h2 { "Silences in force" }
        (super::silences::section(who, &silences))
        })
    })
    .await
}

fn events(items: &[AlertEvent]) -> Markup {
    html! {
        table.events {
            thead { tr { th { "at" } th { "event" } th { "severity" } th { "by" } th { "message" } } }
            tbody {
                @for e in items {
                    tr {
                        td { (time(e.at)) }
                        td { (e.kind.as_str()) }
                        td { (e.severity.as_str()) }
                        td { (e.actor) }
                        td { (e.message) }
                    }
                }
            }
        }
    }
}

fn notifications(items: &[Notification]) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No notification was due." }
        } @else {
            table.notifications {
                thead { tr { th { "at" } th { "channel" } th { "event" } th { "status" } th { "why not sent" } th { "detail" } } }
                tbody {
                    @for n in items {
                        tr data-status=(n.status.as_str()) {
                            td { (time(n.created_at)) }
                            td { (n.channel) }
                            td { (n.event.as_str()) }
                            td {
                                @if let Some(op) = n.operation_id { a href={ "/ui/operations/" (op) } { (n.status.as_str()) } }
                                @else { (n.status.as_str()) }
                            }
                            td.reason {
                                @if let Some(r) = n.reason { (r.as_str()) }
                                @if let Some(s) = n.silence_id { " (silence " code { (s) } ")" }
                            }
                            td.error { (n.detail.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn detail(req: &Request, Path(id): Path<String>, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let read = async {
        let id = AlertId::parse(&id)?;
        Ok::<_, hyperfleet_core::Error>((
            state.app.alert(id).await?,
            state.app.alert_events(id, None, HISTORY).await?.items,
            state.app.alert_notifications(id, None, HISTORY).await?.items,
        ))
    };
    let (a, evs, notes) = match read.await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&who), e),
    };
    let base = format!("/ui/alerts/{}", a.id);
    let body = html! {
        @if a.status == AlertStatus::Firing {
            div.actions {
                @if a.acknowledged_by.is_none() {
                    (action_button(&who, Role::Operator, &format!("{base}/ack"), "Acknowledge", ""))
                }
                (action_button(&who, Role::Operator, &format!("{base}/resolve"), "Resolve", "Resolve this alert by hand?"))
            }
        }
        dl.facts {
            dt { "severity" } dd { span class={ "severity " (a.severity.as_str()) } { (a.severity.as_str()) } }
            dt { "status" } dd { (a.status.as_str()) }
            dt { "source" } dd { (a.source.as_str()) }
            @if let Some(h) = &a.host { dt { "host" } dd { (h) } }
            dt { "message" } dd { (a.message) }
            dt { "dedup key" } dd { code { (a.dedup_key) } }
            dt { "first seen" } dd { (time(a.first_seen)) }
            dt { "last seen" } dd { (time(a.last_seen)) " (" (a.occurrences) " times)" }
            @if let (Some(by), Some(at)) = (&a.acknowledged_by, a.acknowledged_at) { dt { "acknowledged" } dd { (by) " at " (time(at)) } }
            @if let Some(t) = a.resolved_at { dt { "resolved" } dd { (time(t)) } }
            @if let Some(op) = a.operation_id { dt { "operation" } dd { a href={ "/ui/operations/" (op) } { (op) } } }
        }
        h2 { "Events" }
        (events(&evs))
        h2 { "Notifications" }
        (notifications(&notes))
    };
    html_response(StatusCode::OK, page(&format!("Alert: {}", a.title), Some(&who), body))
}

async fn act(req: &Request, state: &AppState, id: &str, form: Option<Form<ActionForm>>, resolving: bool) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Operator, async |who| {
        let id = AlertId::parse(id)?;
        let a = if resolving {
            state.app.resolve_alert(id, &who.principal.name).await?
        } else {
            state.app.acknowledge_alert(id, &who.principal.name).await?
        };
        Ok(format!("/ui/alerts/{}", a.id))
    })
    .await
}

#[handler]
pub async fn ack(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    act(req, state, &id, form, false).await
}

#[handler]
pub async fn resolve(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    act(req, state, &id, form, true).await
}
