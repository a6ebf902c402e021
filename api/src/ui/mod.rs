//! `/ui`: the dashboard, server-rendered HTML from this binary. It is not
//! part of the OpenAPI document and does not take bearer tokens: a browser
//! logs in with a token once (`/ui/login`) and gets a session cookie bound to
//! it. Every page reads through [`hyperfleet_core::app::App`], like the API.
//!
//! Defences, in one place each: the session cookie is HttpOnly and
//! `SameSite=Strict` ([`session`]); every POST passes a same-origin check and
//! carries the session's CSRF token ([`session::check_post`]); the headers
//! ([`CSP`], `no-store`) are set for every `/ui` answer where the API's are
//! (`request_id::security_headers`); maud escapes everything interpolated.
//! Pages work without JavaScript; the one script adds confirmations and
//! live updates ([`events`]).

mod admin;
mod alerts;
mod backups;
mod bulk;
mod events;
mod forms;
mod health;
mod hosts;
mod layout;
mod login;
mod operation;
mod operations;
mod overview;
mod schedules;
mod session;
mod silences;
mod vms;

use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, post};

use crate::AppState;

/// Paths the dashboard answers itself, with its session instead of a bearer token.
pub fn is_ui(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// No inline script or style anywhere: everything comes from `/ui/static/`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");
const ICON: &str = include_str!("static/favicon.svg");

fn asset(content_type: &'static str, body: &'static str) -> impl Endpoint {
    poem::endpoint::make_sync(move |_| Response::builder().content_type(content_type).body(body))
}

/// The dashboard's routes, nested at `/ui`.
pub fn routes(state: AppState) -> impl Endpoint {
    Route::new()
        .at("/", get(overview::page_handler))
        .at("/login", get(login::show).post(login::submit))
        .at("/logout", post(login::logout))
        .at("/events", get(events::stream))
        .at("/fragments/overview", get(overview::fragment))
        .at("/operations", get(operations::list))
        .at("/operations/rows", get(operations::rows))
        .at("/operations/bulk", post(bulk::bulk))
        .at("/operations/:id", get(operations::detail))
        .at("/operations/:id/fragment", get(operations::fragment))
        .at("/operations/:id/cancel", post(operations::cancel))
        .at("/operations/:id/retry", post(operations::retry))
        .at("/vms", get(vms::list))
        .at("/vms/:host/:name", get(vms::detail))
        .at("/vms/:host/:name/:action", post(vms::power))
        .at("/hosts", get(hosts::list))
        .at("/hosts/:name", get(hosts::detail))
        .at("/health", get(health::show))
        .at("/health/run", post(health::run))
        .at("/schedules", get(schedules::list))
        .at("/schedules/:id/trigger", post(schedules::trigger))
        .at("/schedules/:id/enable", post(schedules::enable))
        .at("/schedules/:id/disable", post(schedules::disable))
        .at("/alerts", get(alerts::list))
        .at("/alerts/:id", get(alerts::detail))
        .at("/alerts/:id/ack", post(alerts::ack))
        .at("/alerts/:id/resolve", post(alerts::resolve))
        .at("/silences", post(silences::create))
        .at("/silences/:id/expire", post(silences::expire))
        .at("/backups", get(backups::list))
        .at("/backups/create", post(backups::create))
        .at("/backups/:id", get(backups::detail))
        .at("/backups/:id/verify", post(backups::verify))
        .at("/admin", get(admin::show))
        .at("/admin/tokens", post(admin::create_token))
        .at("/admin/tokens/:id/revoke", post(admin::revoke_token))
        .at("/static/app.css", get(asset("text/css; charset=utf-8", CSS)))
        .at("/static/app.js", get(asset("text/javascript; charset=utf-8", JS)))
        .at("/static/favicon.svg", get(asset("image/svg+xml", ICON)))
        .data(events::Feed::start(state.app.clone()))
        .data(state)
}

/// Middleware: `/` leads a browser to the dashboard.
pub async fn root_redirect<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    if req.uri().path() == "/" && matches!(*req.method(), poem::http::Method::GET | poem::http::Method::HEAD) {
        return Ok(layout::see_other("/ui"));
    }
    next.call(req).await.map(IntoResponse::into_response)
}
