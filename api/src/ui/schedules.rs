//! `/ui/schedules`: every schedule with its next fires, its last fire and
//! that operation's outcome; operators fire one now, admins enable and
//! disable (the API's roles for `schedule_trigger` and `schedule_update`).

use hyperfleet_core::{
    Error, ScheduleId, app::Actor, auth::Role, operation::OperationStatus, schedule::ScheduleDef, store::ScheduleRecord,
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form, Path},
};

use super::{
    forms::{ActionForm, post},
    layout::{action_button, error_page, html_response, page, time},
    session::{self, UiSession},
};
use crate::{AppState, request_id::current_request_id};

/// Next fires shown per schedule.
const UPCOMING: usize = 3;

struct Row {
    s: ScheduleRecord,
    /// The last fired operation's status; `None` when never fired or pruned.
    outcome: Option<OperationStatus>,
}

fn row(who: &UiSession, r: &Row, now: hyperfleet_core::Timestamp) -> Markup {
    let s = &r.s;
    let base = format!("/ui/schedules/{}", s.id);
    let upcoming =
        if s.enabled { s.spec().map(|c| c.upcoming_local(now, UPCOMING)).unwrap_or_default() } else { vec![] };
    html! {
        tr data-schedule=(s.id) {
            td { (s.name) }
            td { (s.kind.as_str()) @if let Some(h) = &s.host { " on " (h) } }
            td { code { (s.cron) } " " (s.timezone) }
            td { (if s.enabled { "enabled" } else { "disabled" }) }
            td.fires {
                @if upcoming.is_empty() { "—" }
                @for t in &upcoming { span.fire { (t.format("%Y-%m-%d %H:%M %:z")) } " " }
            }
            td {
                @match (s.last_fire_at, s.last_operation_id) {
                    (Some(at), Some(op)) => {
                        a href={ "/ui/operations/" (op) } { (time(at)) }
                        " "
                        @match r.outcome {
                            Some(st) => span class={ "status " (st.as_str()) } { (st.as_str()) },
                            None => span.status { "pruned" },
                        }
                    }
                    _ => "never",
                }
            }
            td.actions {
                (action_button(who, Role::Operator, &format!("{base}/trigger"), "Fire now", &format!("Fire {} now?", s.name)))
                @if s.enabled {
                    (action_button(who, Role::Admin, &format!("{base}/disable"), "Disable", &format!("Disable {}?", s.name)))
                } @else {
                    (action_button(who, Role::Admin, &format!("{base}/enable"), "Enable", ""))
                }
            }
        }
    }
}

async fn read(state: &AppState) -> hyperfleet_core::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for s in state.app.schedules().await? {
        let outcome = match s.last_operation_id {
            Some(id) => match state.app.operation(id).await {
                Ok(op) => Some(op.status),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        rows.push(Row { s, outcome });
    }
    Ok(rows)
}

#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let rows = match read(state).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&who), e),
    };
    let now = state.app.now();
    let body = html! {
        @if rows.is_empty() {
            p.empty { "No schedules." }
        } @else {
            table.schedules {
                thead { tr {
                    th { "name" } th { "does" } th { "cron" } th { "state" } th { "next fires" } th { "last fire" } th {}
                } }
                tbody { @for r in &rows { (row(&who, r, now)) } }
            }
        }
    };
    html_response(StatusCode::OK, page("Schedules", Some(&who), body))
}

#[handler]
pub async fn trigger(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Operator, async |who| {
        let op = state.app.trigger_schedule(ScheduleId::parse(&id)?, &who.principal.name).await?;
        Ok(format!("/ui/operations/{}", op.id))
    })
    .await
}

async fn set_enabled(
    req: &Request,
    state: &AppState,
    id: &str,
    form: Option<Form<ActionForm>>,
    enabled: bool,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Admin, async |who| {
        let id = ScheduleId::parse(id)?;
        let s = state.app.schedule(id).await?;
        let def = ScheduleDef {
            name: s.name,
            cron: s.cron,
            timezone: s.timezone,
            kind: s.kind.as_str().to_owned(),
            params: s.params.0,
            host: s.host,
            enabled,
            missed_ticks: s.missed_ticks,
            jitter_s: s.jitter_s.max(0) as u32,
        };
        let rid = current_request_id();
        state.app.update_schedule(Actor { name: &who.principal.name, request_id: Some(&rid) }, id, &def).await?;
        Ok("/ui/schedules".to_owned())
    })
    .await
}

#[handler]
pub async fn enable(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    set_enabled(req, state, &id, form, true).await
}

#[handler]
pub async fn disable(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    set_enabled(req, state, &id, form, false).await
}
