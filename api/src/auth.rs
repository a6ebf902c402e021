//! Authentication, authorisation and rate limits.
//!
//! A middleware resolves `Authorization: Bearer hf_…` to a [`Principal`] for
//! every route but the public ones (probes, the spec, the docs), answering 401
//! or 429 itself; handlers then take [`BearerAuth`] (which documents the
//! scheme in the spec) and check the role they need.
//!
//! Two limits: requests per token, and failed authentications per client
//! address. An address over its failure budget is answered 429 before its
//! token is looked up, so guessing costs the database nothing; other
//! addresses, and valid tokens once the budget refills, are unaffected.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
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

/// A token bucket per key (a token, or a client address), in a map of at
/// most `max_keys` entries.
#[derive(Debug)]
pub struct RateLimiter<K = String> {
    per_s: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

/// Client addresses remembered by the failure limiter (a few hundred kB).
const MAX_ADDRESSES: usize = 4096;

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(per_s: u32, burst: u32) -> Self {
        Self::bounded(per_s, burst, usize::MAX)
    }

    pub fn bounded(per_s: u32, burst: u32, max_keys: usize) -> Self {
        Self {
            per_s: f64::from(per_s.max(1)),
            burst: f64::from(burst.max(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.with_bucket(key, |tokens| {
            if *tokens >= 1.0 {
                *tokens -= 1.0;
            }
        })
    }

    /// Whether `key` has a request left, without taking it.
    pub fn peek(&self, key: &K) -> Result<(), Duration> {
        self.with_bucket(key, |_| {})
    }

    /// Refills `key`'s bucket, applies `take`, and answers from the level before it.
    fn with_bucket(&self, key: &K, take: impl FnOnce(&mut f64)) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.make_room(&mut buckets, now);
        }
        let (tokens, last) = buckets.entry(key.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_s).min(self.burst);
        *last = now;
        let had = *tokens;
        take(tokens);
        if had >= 1.0 { Ok(()) } else { Err(Duration::from_secs_f64((1.0 - had) / self.per_s)) }
    }

    /// Forgets the buckets that have refilled (they hold nothing a new one
    /// would not), or else the one left alone longest.
    fn make_room(&self, buckets: &mut HashMap<K, (f64, Instant)>, now: Instant) {
        let (per_s, burst) = (self.per_s, self.burst);
        buckets.retain(|_, (tokens, last)| *tokens + now.duration_since(*last).as_secs_f64() * per_s < burst);
        if buckets.len() >= self.max_keys
            && let Some(oldest) = buckets.iter().min_by_key(|(_, (_, last))| *last).map(|(k, _)| k.clone())
        {
            buckets.remove(&oldest);
        }
    }
}

/// Failed authentications per client address.
pub fn failure_limiter(per_s: u32, burst: u32) -> RateLimiter<IpAddr> {
    RateLimiter::bounded(per_s, burst, MAX_ADDRESSES)
}

/// The key a client address is limited by: IPv6 clients by their /64 (one
/// host owns a whole /64, and would otherwise get a fresh budget per address).
pub(crate) fn client_key(req: &Request) -> Option<IpAddr> {
    let ip = req.remote_addr().as_socket_addr()?.ip();
    Some(match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)),
        v4 => v4,
    })
}

fn too_many(code: &str, message: String, wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut resp = poem::IntoResponse::into_response(ApiError::TooManyRequests(crate::error::body(
        code,
        format!("{message}; retry in {secs} s"),
    )));
    resp.headers_mut().insert(poem::http::header::RETRY_AFTER, secs.into());
    resp
}

/// Middleware: 401 without a valid token, 429 over the token's rate.
pub async fn authenticate<E: Endpoint>(next: E, mut req: Request, state: &AppState) -> poem::Result<Response> {
    // The dashboard authenticates by its session cookie (`crate::ui`).
    if is_public(req.uri().path()) || crate::ui::is_ui(req.uri().path()) {
        return next.call(req).await.map(poem::IntoResponse::into_response);
    }
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let presented = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let client = client_key(&req);
    let principal = match presented {
        None => Err(Error::Unauthenticated("send `Authorization: Bearer <token>`".into())),
        Some(token) => {
            if let Some(Err(wait)) = client.map(|ip| state.auth_failures.peek(&ip)) {
                let message = "too many failed authentications from this address".to_owned();
                return Ok(too_many("auth_rate_limited", message, wait));
            }
            state.app.authenticate(token).await
        }
    };
    let principal = match principal {
        Ok(p) => p,
        Err(e) => {
            if let (Some(ip), Some(_), Error::Unauthenticated(_)) = (client, presented, &e) {
                let _ = state.auth_failures.check(&ip);
            }
            return Ok(poem::IntoResponse::into_response(ApiError::from(e)));
        }
    };
    if let Some(caller) = req.extensions().get::<crate::request_id::Caller>() {
        caller.set(&principal.name);
    }
    if let Err(wait) = state.limiter.check(&principal.token_id) {
        let message = format!("token `{}` is over its rate limit", principal.name);
        return Ok(too_many("rate_limited", message, wait));
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
        let (a, b) = ("a".to_owned(), "b".to_owned());
        assert!((0..3).all(|_| l.check(&a).is_ok()));
        let wait = l.check(&a).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(l.check(&b).is_ok(), "buckets are per token");
    }

    #[test]
    fn peek_takes_nothing_and_the_map_stays_bounded() {
        let l = RateLimiter::bounded(1, 2, 3);
        assert!(l.peek(&1).is_ok() && l.peek(&1).is_ok() && l.peek(&1).is_ok());
        assert!(l.check(&1).is_ok() && l.check(&1).is_ok());
        assert!(l.peek(&1).is_err() && l.check(&1).is_err());
        for key in 2..100 {
            let _ = l.check(&key);
        }
        assert!(l.buckets.lock().unwrap().len() <= 3);
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/healthz") && is_public("/docs/") && is_public("/openapi.json"));
        assert!(!is_public("/api/v1/vms") && !is_public("/docsx"));
    }
}
