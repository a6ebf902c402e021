//! One request id per request: taken from `X-Request-Id` when the caller sent
//! a sane one, generated otherwise. It is echoed in the response, written on
//! the operation row, and carried by the worker's spans.

use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

pub const HEADER: &str = "x-request-id";

/// Oversized bodies up to this size are read and discarded before the 413.
const DRAIN_LIMIT: usize = 1 << 20;

/// The name of the token that authenticated the request, set by the
/// authentication middleware for the access log.
#[derive(Debug, Clone, Default)]
pub struct Caller(std::sync::Arc<std::sync::OnceLock<String>>);

impl Caller {
    pub fn set(&self, token_name: &str) {
        let _ = self.0.set(token_name.to_owned());
    }
}

/// One line per request: who, what, the answer and how long it took.
fn access_log(
    id: &str,
    caller: &Caller,
    method: &poem::http::Method,
    path: &str,
    status: u16,
    started: std::time::Instant,
) {
    tracing::info!(
        target: "hyperfleet::access",
        request_id = %id,
        token = caller.0.get().map_or("-", String::as_str),
        method = %method,
        path,
        status,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
}

/// The id of the request being served (empty outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

fn accept(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Headers on every answer. API answers are JSON and never a page, so their
/// CSP forbids everything; the interactive docs (Swagger UI, inline script)
/// get a CSP that allows only same-origin resources and that script.
fn security_headers(path: &str, headers: &mut poem::http::HeaderMap) {
    use poem::http::HeaderValue;
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if crate::ui::is_ui(path) {
        // Pages show ledger contents: no cache may keep them.
        headers.insert("content-security-policy", HeaderValue::from_static(crate::ui::CSP));
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
        return;
    }
    let csp = if path == "/docs" || path.starts_with("/docs/") {
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    headers.insert("content-security-policy", HeaderValue::from_static(csp));
}

/// What was wrong with the body, found while reading it.
#[derive(Debug, Clone, Copy)]
enum BodyProblem {
    TooLarge,
    Null,
}

/// Middleware inside authentication: refuses a body that was too large or a
/// literal `null`.
pub async fn body_check<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    match req.extensions().get::<BodyProblem>() {
        Some(BodyProblem::TooLarge) => {
            Ok(crate::error::render_poem_error(poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE))
                .await)
        }
        Some(BodyProblem::Null) => {
            let body = crate::error::body("invalid_body", "the body is `null`: send an object, or no body");
            Ok(crate::error::ApiError::BadRequest(body).into_response())
        }
        None => next.call(req).await.map(IntoResponse::into_response),
    }
}

/// Middleware: assigns the id, runs the request inside a span carrying it,
/// bounds the body (in size and in time), and sets the response header.
pub async fn with_request_id<E: Endpoint>(next: E, mut req: Request, limits: crate::Limits) -> poem::Result<Response> {
    let started = std::time::Instant::now();
    let (method, caller) = (req.method().clone(), Caller::default());
    req.extensions_mut().insert(caller.clone());
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| accept(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    // A POST with no body and no content type means "no options": treat it as
    // JSON so optional bodies work for plain `curl -X POST`.
    let writes =
        matches!(*req.method(), poem::http::Method::POST | poem::http::Method::PATCH | poem::http::Method::PUT);
    if req.content_type().is_none() && writes {
        req.headers_mut().insert(poem::http::header::CONTENT_TYPE, "application/json".parse().expect("static header"));
    }
    // The body is read here, before authentication, so its deadline is here
    // too: a client that stalls mid-body holds nothing for long.
    let problem = match tokio::time::timeout(limits.body_timeout, read_body(&mut req, limits.body_bytes, writes)).await
    {
        Ok(problem) => problem,
        Err(_) => {
            let mut resp = REQUEST_ID.scope(id.clone(), async { body_timed_out(limits.body_timeout) }).await;
            finish(&id, req.uri().path(), &mut resp);
            access_log(&id, &caller, &method, req.uri().path(), resp.status().as_u16(), started);
            return Ok(resp);
        }
    };
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    // Refused only after authentication (see `body_check`): a caller without a
    // token learns nothing but 401.
    if let Some(problem) = problem {
        req.extensions_mut().insert(problem);
    }
    let resp = REQUEST_ID
        .scope(id.clone(), async move {
            match next.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => crate::error::render_poem_error(e).await,
            }
        })
        .instrument(span)
        .await;
    let mut resp = resp;
    finish(&id, &path, &mut resp);
    access_log(&id, &caller, &method, &path, resp.status().as_u16(), started);
    Ok(resp)
}

/// Reads the body into the request, bounded by `limit`; says what was wrong with it.
async fn read_body(req: &mut Request, limit: usize, writes: bool) -> Option<BodyProblem> {
    match req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) if len > limit => {
            // Read (and drop) a moderately oversized body so the client sees the
            // 413 instead of a reset connection; a huge one is cut off.
            if len <= DRAIN_LIMIT {
                let _ = req.take_body().into_bytes_limit(DRAIN_LIMIT).await;
            }
            Some(BodyProblem::TooLarge)
        }
        _ => match req.take_body().into_bytes_limit(limit).await {
            Ok(bytes) => {
                // Every request body is an object (or absent); a literal JSON `null` would
                // otherwise read as "no body" and be accepted against the schema.
                let null = writes && bytes.trim_ascii() == b"null";
                req.set_body(bytes);
                null.then_some(BodyProblem::Null)
            }
            Err(_) => Some(BodyProblem::TooLarge),
        },
    }
}

/// 408 for a body that did not arrive in time; the connection is closed after it.
fn body_timed_out(limit: std::time::Duration) -> Response {
    let body = serde_json::json!({
        "code": "body_timeout",
        "message": format!("the request body did not arrive within {} s", limit.as_secs()),
        "request_id": current_request_id(),
    });
    Response::builder()
        .status(poem::http::StatusCode::REQUEST_TIMEOUT)
        .header(poem::http::header::CONNECTION, "close")
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

/// The headers every answer carries.
fn finish(id: &str, path: &str, resp: &mut Response) {
    if let Ok(value) = id.parse() {
        resp.headers_mut().insert(HEADER, value);
    }
    security_headers(path, resp.headers_mut());
}
