//! `/ui/health`: every check's state on every host (with a pending change
//! hysteresis has not confirmed yet), the newest transitions and runs, and
//! for operators "run the checks now" — the API's `health_run_create`.

use hyperfleet_core::{
    auth::Role,
    store::{HealthEventRecord, HealthRunRecord, HealthStateRecord},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form},
};

use super::{
    forms::{ActionForm, origin, post},
    layout::{action_button, error_page, html_response, page, time},
    session,
};
use crate::AppState;

/// Check states as a table (host, check, status, since, pending change).
pub fn check_states(states: &[HealthStateRecord]) -> Markup {
    html! {
        @if states.is_empty() {
            p.empty { "No check has run yet." }
        } @else {
            table.checks {
                thead { tr { th { "host" } th { "check" } th { "status" } th { "since" } th { "pending" } } }
                tbody {
                    @for s in states {
                        tr data-check=(s.check_name) {
                            td { a href={ "/ui/hosts/" (s.host) } { (s.host) } }
                            td { (s.check_name) }
                            td { span class={ "health " (s.status.as_str()) } { (s.status.as_str()) } }
                            td { (time(s.since)) }
                            td {
                                @if let (Some(c), Some(t)) = (s.candidate, s.candidate_since) {
                                    (c.as_str()) " since " (time(t))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Check transitions, newest first.
pub fn transitions(events: &[HealthEventRecord]) -> Markup {
    html! {
        @if events.is_empty() {
            p.empty { "No check has changed state." }
        } @else {
            table.transitions {
                thead { tr { th { "at" } th { "host" } th { "check" } th { "change" } th { "message" } } }
                tbody {
                    @for e in events {
                        tr {
                            td { (time(e.at)) }
                            td { (e.host) }
                            td { (e.check_name) }
                            td {
                                span class={ "health " (e.from_status.as_str()) } { (e.from_status.as_str()) }
                                " → "
                                span class={ "health " (e.to_status.as_str()) } { (e.to_status.as_str()) }
                            }
                            td { (e.message) }
                        }
                    }
                }
            }
        }
    }
}

fn runs(runs: &[HealthRunRecord]) -> Markup {
    html! {
        @if runs.is_empty() {
            p.empty { "No runs yet." }
        } @else {
            table.runs {
                thead { tr { th { "run" } th { "host" } th { "status" } th { "finished" } } }
                tbody {
                    @for r in runs {
                        tr {
                            td { a href={ "/ui/operations/" (r.id) } { (r.id) } }
                            td { (r.host) }
                            td { span class={ "health " (r.status.as_str()) } { (r.status.as_str()) } }
                            td { (time(r.finished_at)) }
                        }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn show(req: &Request, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let read = async {
        Ok::<_, hyperfleet_core::Error>((
            state.app.health_states(None).await?,
            state.app.health_events(50).await?,
            state.app.health_runs(None, 20).await?,
        ))
    };
    let (states, events, recent) = match read.await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&who), e),
    };
    let body = html! {
        div.actions {
            (action_button(&who, Role::Operator, "/ui/health/run", "Run the checks now", "Run the health checks on every host?"))
        }
        h2 { "Checks" }
        (check_states(&states))
        h2 { "Transitions" }
        (transitions(&events))
        h2 { "Recent runs" }
        (runs(&recent))
    };
    html_response(StatusCode::OK, page("Health", Some(&who), body))
}

#[handler]
pub async fn run(req: &Request, Data(state): Data<&AppState>, form: Option<Form<ActionForm>>) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Operator, async |who| {
        state.app.request_health_runs(None, origin(state, who)).await?;
        Ok("/ui/operations?kind=health.run".to_owned())
    })
    .await
}
