//! `/ui/login` and `/ui/logout`. Login takes an API token once and answers
//! with the session cookie; failed logins count against the same
//! per-address budget as failed bearer authentications. Login is guarded by
//! the same-origin check only: before it there is no session to bind a CSRF
//! token to, and `SameSite=Strict` keeps a forged login from being used.

use hyperfleet_core::{Error, auth::Role};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Form},
};

use super::{
    layout::{self, html_response, message_page, page, see_other},
    session::{self, CsrfForm},
};
use crate::{AppState, auth::client_key, request_id::current_request_id};

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    token: Option<String>,
}

fn login_page(status: StatusCode, problem: Option<&str>) -> Response {
    let body: Markup = html! {
        @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
        form.login method="post" action="/ui/login" {
            label for="token" { "API token" }
            input #token type="password" name="token" autocomplete="off" required placeholder="hf_…";
            button type="submit" { "Log in" }
        }
        p.hint { "Use a token from " code { "hyperfleet token create" } " (or the one printed at first start)." }
    };
    html_response(status, page("Log in", None, body))
}

#[handler]
pub async fn show(req: &Request, Data(state): Data<&AppState>) -> Response {
    if session::current(req, state).await.is_ok() {
        return see_other("/ui");
    }
    login_page(StatusCode::OK, None)
}

#[handler]
pub async fn submit(req: &Request, Data(state): Data<&AppState>, form: Option<Form<LoginForm>>) -> Response {
    if !session::same_origin(req) {
        return message_page(StatusCode::FORBIDDEN, None, "This request did not come from a page of this dashboard.");
    }
    let client = client_key(req);
    if let Some(Err(wait)) = client.map(|ip| state.auth_failures.peek(&ip)) {
        return layout::too_many(None, "Too many failed logins from this address", wait);
    }
    let token = form.and_then(|Form(f)| f.token).unwrap_or_default();
    match state.app.login(token.trim(), Some(&current_request_id())).await {
        Ok((_, new)) => {
            let mut resp = see_other("/ui");
            if let Ok(v) = session::set_cookie(req, &new.cookie).parse() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(Error::Unauthenticated(_)) => {
            if let Some(ip) = client {
                let _ = state.auth_failures.check(&ip);
            }
            login_page(StatusCode::UNAUTHORIZED, Some("That token is invalid, expired or revoked."))
        }
        Err(e) => layout::error_page(None, e),
    }
}

#[handler]
pub async fn logout(req: &Request, Data(state): Data<&AppState>, form: Option<Form<CsrfForm>>) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Err(refused) = session::check_post(req, state, form.csrf.as_deref(), Role::Viewer).await {
        return refused;
    }
    let Some(cookie) = session::cookie(req) else { return see_other("/ui/login") };
    if let Err(e) = state.app.logout(&cookie, Some(&current_request_id())).await {
        return layout::error_page(None, e);
    }
    let mut resp = see_other("/ui/login");
    if let Ok(v) = session::clear_cookie(req).parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
