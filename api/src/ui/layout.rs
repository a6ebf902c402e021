//! The page shell (head, top bar, navigation) and the small answers every
//! page uses. maud escapes every interpolated value, so user-provided text
//! (VM names, error messages) can only ever render as text.

use hyperfleet_core::{Error, Timestamp, auth::Role};
use maud::{DOCTYPE, Markup, html};
use poem::{
    IntoResponse, Response,
    http::{StatusCode, header},
};

use super::session::UiSession;
use crate::error::ApiError;

/// A full page: the shell around `body`.
pub fn page(title: &str, who: Option<&UiSession>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Hyperfleet" }
                link rel="stylesheet" href="/ui/static/app.css";
                link rel="icon" href="/ui/static/favicon.svg" type="image/svg+xml";
                script src="/ui/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui" { "Hyperfleet" }
                    @if let Some(who) = who {
                        nav {
                            a href="/ui" { "Overview" }
                            a href="/ui/operations" { "Operations" }
                            (nav_more(who))
                        }
                        button #live type="button" hidden { "Live" }
                        span.who { (who.principal.name) " · " (who.principal.role.as_str()) }
                        form.inline method="post" action="/ui/logout" {
                            (csrf_field(who))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The pages past the operations; Admin only for admins.
fn nav_more(who: &UiSession) -> Markup {
    html! {
        a href="/ui/vms" { "VMs" }
        a href="/ui/hosts" { "Hosts" }
        a href="/ui/schedules" { "Schedules" }
        a href="/ui/health" { "Health" }
        a href="/ui/alerts" { "Alerts" }
        a href="/ui/backups" { "Backups" }
        @if who.can(Role::Admin) { a href="/ui/admin" { "Admin" } }
    }
}

/// The hidden field that carries the session's CSRF token.
pub fn csrf_field(who: &UiSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf); }
}

/// A button that POSTs to `action`, shown only to roles that may use it.
pub fn action_button(who: &UiSession, role: Role, action: &str, label: &str, confirm: &str) -> Markup {
    html! {
        @if who.can(role) {
            form.inline method="post" action=(action) data-confirm=(confirm) {
                (csrf_field(who))
                button type="submit" { (label) }
            }
        }
    }
}

/// A time as the ledger stores it, to the second.
pub fn time(t: Timestamp) -> String {
    t.0.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    Response::builder().status(status).content_type("text/html; charset=utf-8").body(markup.into_string())
}

/// `303 See Other` to `location`: what a form POST or a missing session gets.
pub fn see_other(location: &str) -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, location).finish()
}

/// A page that only says something (an error, a refusal).
pub fn message_page(status: StatusCode, who: Option<&UiSession>, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        p.message { (message) }
        p { a href="/ui" { "Back to the overview" } }
    };
    html_response(status, page(title, who, body))
}

/// `429` with `Retry-After`: over a rate limit for `wait`.
pub fn too_many(who: Option<&UiSession>, message: &str, wait: std::time::Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut resp = message_page(StatusCode::TOO_MANY_REQUESTS, who, &format!("{message}; try again in {secs} s."));
    resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
    resp
}

/// The page for an error from the application layer, with the API's status
/// for it (internal causes are logged there, never shown).
pub fn error_page(who: Option<&UiSession>, err: Error) -> Response {
    let message = err.to_string();
    let status = ApiError::from(err).into_response().status();
    let shown = if status.is_server_error() { "Something failed on the server; its log says what." } else { &message };
    message_page(status, who, shown)
}
