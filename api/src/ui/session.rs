//! The session cookie and the checks every dashboard request passes.
//!
//! The cookie is HttpOnly and `SameSite=Strict`; under TLS it is also
//! `Secure` and `__Host-` prefixed (pinned to this host and path `/`). On
//! plain HTTP — the loopback default — browsers refuse `Secure` cookies, so
//! the un-prefixed name is used there.

use hyperfleet_core::{
    Error,
    app::Session,
    auth::{Principal, Role},
    session::csrf_matches,
};
use poem::{
    Request, Response,
    http::{StatusCode, header, uri::Scheme},
};

use super::layout;
use crate::AppState;

const PLAIN: &str = "hf_session";
const PREFIXED: &str = "__Host-hf_session";

/// The name of the session cookie on this connection.
fn cookie_name(req: &Request) -> &'static str {
    if req.scheme() == &Scheme::HTTPS { PREFIXED } else { PLAIN }
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(req: &Request, value: &str) -> String {
    let secure = if req.scheme() == &Scheme::HTTPS { "; Secure" } else { "" };
    format!("{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}", cookie_name(req))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(req: &Request) -> String {
    let secure = if req.scheme() == &Scheme::HTTPS { "; Secure" } else { "" };
    format!("{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}", cookie_name(req))
}

/// The session cookie's value, if the browser sent one.
pub fn cookie(req: &Request) -> Option<String> {
    let name = cookie_name(req);
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A logged-in browser: who it speaks for and its CSRF token.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub principal: Principal,
    pub csrf: String,
}

impl UiSession {
    /// Whether controls needing `role` are shown (and allowed).
    pub fn can(&self, role: Role) -> bool {
        self.principal.role >= role
    }
}

/// The request's live session, or the answer to give instead (to the login
/// page when there is none or it has ended).
pub async fn current(req: &Request, state: &AppState) -> Result<UiSession, Response> {
    let Some(value) = cookie(req) else { return Err(layout::see_other("/ui/login")) };
    match state.app.session(&value).await {
        Ok(Session { principal, csrf }) => {
            let who = UiSession { principal, csrf };
            // The token's request budget is the API's: a session spends it too.
            if let Err(wait) = state.limiter.check(&who.principal.token_id) {
                let message = format!("Token `{}` is over its rate limit", who.principal.name);
                return Err(layout::too_many(Some(&who), &message, wait));
            }
            Ok(who)
        }
        Err(Error::Unauthenticated(_)) => {
            let mut resp = layout::see_other("/ui/login");
            if let Ok(v) = clear_cookie(req).parse() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            Err(resp)
        }
        Err(e) => Err(layout::error_page(None, e)),
    }
}

/// Whether a state-changing request comes from a page of this origin:
/// `Sec-Fetch-Site: same-origin` when the browser sends it, else an `Origin`
/// equal to this server's. A request with neither is refused.
pub fn same_origin(req: &Request) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let Some(host) = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    origin == format!("{}://{host}", req.scheme())
}

fn forbidden(who: Option<&UiSession>, message: &str) -> Response {
    layout::message_page(StatusCode::FORBIDDEN, who, message)
}

/// The checks before any POST with a session: same origin, live session,
/// the session's CSRF token, and at least `role`.
pub async fn check_post(
    req: &Request,
    state: &AppState,
    csrf: Option<&str>,
    role: Role,
) -> Result<UiSession, Response> {
    if !same_origin(req) {
        return Err(forbidden(None, "This request did not come from a page of this dashboard."));
    }
    let session = current(req, state).await?;
    if !csrf.is_some_and(|c| csrf_matches(c, &session.csrf)) {
        return Err(forbidden(Some(&session), "The form was stale or forged (CSRF check failed): reload the page."));
    }
    if !session.can(role) {
        let message = format!(
            "Token `{}` has role {}; this needs {} or above.",
            session.principal.name,
            session.principal.role.as_str(),
            role.as_str()
        );
        return Err(forbidden(Some(&session), &message));
    }
    Ok(session)
}

/// The form field every POST carries.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().uri("http://127.0.0.1:8080/ui/logout".parse().unwrap());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.finish()
    }

    #[test]
    fn same_origin_wants_fetch_metadata_or_a_matching_origin() {
        assert!(same_origin(&req(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&req(&[("sec-fetch-site", "cross-site"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_origin(&req(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&req(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_origin(&req(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")])));
        assert!(!same_origin(&req(&[("host", "127.0.0.1:8080")])));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_plain_http_uses_the_plain_name() {
        let r = req(&[("cookie", "a=1; hf_session=abc; b=2")]);
        assert_eq!(cookie(&r).as_deref(), Some("abc"));
        assert_eq!(cookie(&req(&[("cookie", "__Host-hf_session=abc")])), None);
        let set = set_cookie(&r, "abc");
        assert!(set.starts_with("hf_session=abc;") && set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure"));
    }
}
