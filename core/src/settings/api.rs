//! `[api]`: where the API listens, and the limits it holds every client to
//! (bodies, timeouts, connections, per-token and per-address rates).

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Requests taking longer are answered 503 `timeout`.
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: u64,
    /// Sustained requests per second allowed per token (429 beyond, with `Retry-After`).
    #[serde(default = "default_rate_limit_per_s")]
    pub rate_limit_per_s: u32,
    /// Requests a token may send in a burst above the sustained rate.
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Failed authentications allowed per second from one client address
    /// (429 `auth_rate_limited` beyond, with `Retry-After`, before any lookup).
    #[serde(default = "default_auth_failures_per_s")]
    pub auth_failures_per_s: u32,
    /// Failed authentications one address may make in a burst.
    #[serde(default = "default_auth_failure_burst")]
    pub auth_failure_burst: u32,
    /// A request's line and headers must arrive within this many seconds of the
    /// server starting to wait for them (on a kept-alive connection, of the
    /// previous answer); the connection is closed otherwise.
    #[serde(default = "default_header_timeout_s")]
    pub header_timeout_s: u64,
    /// A request's body must arrive within this many seconds (408 otherwise);
    /// this holds before authentication.
    #[serde(default = "default_body_timeout_s")]
    pub body_timeout_s: u64,
    /// A connection with no request in progress and no bytes moving for this
    /// many seconds is closed (idle keep-alive, stalled TLS, idle HTTP/2).
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u64,
    /// Open connections served at once; connections beyond are closed at once.
    #[serde(default = "default_max_connections_api")]
    pub max_connections: u32,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` advertised on HTTP/2 connections.
    #[serde(default = "default_http2_max_streams")]
    pub http2_max_streams: u32,
    /// Serve HTTPS (rustls) when both are set; otherwise plain HTTP behind a proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            body_limit_bytes: default_body_limit(),
            request_timeout_s: default_request_timeout_s(),
            rate_limit_per_s: default_rate_limit_per_s(),
            rate_limit_burst: default_rate_limit_burst(),
            auth_failures_per_s: default_auth_failures_per_s(),
            auth_failure_burst: default_auth_failure_burst(),
            header_timeout_s: default_header_timeout_s(),
            body_timeout_s: default_body_timeout_s(),
            idle_timeout_s: default_idle_timeout_s(),
            max_connections: default_max_connections_api(),
            http2_max_streams: default_http2_max_streams(),
            tls: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_body_limit() -> usize {
    64 * 1024
}
fn default_request_timeout_s() -> u64 {
    180
}
fn default_rate_limit_per_s() -> u32 {
    50
}
fn default_rate_limit_burst() -> u32 {
    200
}
fn default_auth_failures_per_s() -> u32 {
    1
}
fn default_auth_failure_burst() -> u32 {
    20
}
fn default_header_timeout_s() -> u64 {
    10
}
fn default_body_timeout_s() -> u64 {
    30
}
fn default_idle_timeout_s() -> u64 {
    60
}
fn default_max_connections_api() -> u32 {
    512
}
fn default_http2_max_streams() -> u32 {
    64
}
