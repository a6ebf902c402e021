//! Authentication, authorisation and per-token rate limits.
//!
//! A middleware resolves `Authorization: Bearer hf_…` to a [`Principal`] for
//! every route but the public ones (probes, the spec, the docs), answering 401
//! or 429 itself; handlers then take [`BearerAuth`] (which documents the
//! scheme in the spec) and check the role they need.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use hyperfleet_core::{
    Error,
    auth::{Principal, Role},
};
use poem::{Endpoint, Request, Response};
use poem_openapi::{SecurityScheme, auth::Bearer};

use crate::{AppState, error::ApiError};

// One bearer scheme (`bearerAuth` in the spec) and one extractor per role, so
// the role is checked as the request is extracted — before its body is parsed:
// a caller without the role learns nothing from validation errors.
macro_rules! role_scheme {
    ($name:ident, $checker:literal) => {
        /// `Authorization: Bearer hf_…`: a token from `hyperfleet token create` or
        /// `POST /api/v1/tokens`. Roles: viewer (read) < operator (VM actions,
        /// cancel, retry) < admin (tokens, audit log); 403 below the one needed.
        #[derive(SecurityScheme)]
        #[oai(rename = "bearerAuth", ty = "bearer", bearer_format = "hf_<64 hex digits>", checker = $checker)]
        pub struct $name(pub Principal);
    };
}

role_scheme!(ViewerAuth, "viewer_of");
role_scheme!(OperatorAuth, "operator_of");
role_scheme!(AdminAuth, "admin_of");

async fn viewer_of(req: &Request, _: Bearer) -> poem::Result<Principal> {
    principal_with(req, Role::Viewer)
}

async fn operator_of(req: &Request, _: Bearer) -> poem::Result<Principal> {
    principal_with(req, Role::Operator)
}

async fn admin_of(req: &Request, _: Bearer) -> poem::Result<Principal> {
    principal_with(req, Role::Admin)
}

/// The principal the middleware resolved, if its role is at least `role`.
fn principal_with(req: &Request, role: Role) -> poem::Result<Principal> {
    let principal = req
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| poem::Error::from_status(poem::http::StatusCode::UNAUTHORIZED))?;
    principal
        .require(role)
        .cloned()
        .map_err(|e| poem::Error::from_response(poem::IntoResponse::into_response(ApiError::from(e))))
}

/// Paths anyone may read: probes, the spec and the interactive docs.
pub fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/openapi.json") || path == "/docs" || path.starts_with("/docs/")
}

/// A token bucket per token name.
#[derive(Debug)]
pub struct RateLimiter {
    per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_s: u32, burst: u32) -> Self {
        Self { per_s: f64::from(per_s.max(1)), burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Takes one request from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_s).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_s))
        }
    }
}

/// Middleware: 401 without a valid token, 429 over the token's rate.
pub async fn authenticate<E: Endpoint>(next: E, mut req: Request, state: &AppState) -> poem::Result<Response> {
    if is_public(req.uri().path()) {
        return next.call(req).await.map(poem::IntoResponse::into_response);
    }
    let presented = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let principal = match presented {
        None => Err(Error::Unauthenticated("send `Authorization: Bearer <token>`".into())),
        Some(token) => state.app.authenticate(token).await,
    };
    let principal = match principal {
        Ok(p) => p,
        Err(e) => return Ok(poem::IntoResponse::into_response(ApiError::from(e))),
    };
    if let Err(wait) = state.limiter.check(&principal.token_id) {
        let secs = wait.as_secs().max(1);
        let mut resp = poem::IntoResponse::into_response(ApiError::TooManyRequests(crate::error::body(
            "rate_limited",
            format!("token `{}` is over its rate limit; retry in {secs} s", principal.name),
        )));
        resp.headers_mut().insert(poem::http::header::RETRY_AFTER, secs.into());
        return Ok(resp);
    }
    req.extensions_mut().insert(principal);
    next.call(req).await.map(poem::IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_limits() {
        let l = RateLimiter::new(10, 3);
        assert!((0..3).all(|_| l.check("a").is_ok()));
        let wait = l.check("a").unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(l.check("b").is_ok(), "buckets are per token");
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/healthz") && is_public("/docs/") && is_public("/openapi.json"));
        assert!(!is_public("/api/v1/vms") && !is_public("/docsx"));
    }
}
