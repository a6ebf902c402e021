//! Hyperfleet's front door: a poem-openapi server over the ledger. Handlers
//! are thin — parse the input into domain types, call one `core` function,
//! map the result — and never touch SQL or libvirt.

mod alert_views;
mod alerts;
mod allow;
pub mod auth;
mod backup_views;
mod backups;
mod diagnostics;
pub mod error;
mod health;
mod hosts;
mod metrics;
pub use metrics::listener as metrics_listener;
mod operations;
mod reconcilers;
pub mod request_id;
mod schedules;
mod seed;
mod seed_health;
pub mod server;
mod silences;
mod spec;
mod submit;
mod system;
mod text;
mod tokens;
mod ui;
pub mod views;
mod vms;

use hyperfleet_core::{
    Result,
    app::{App, Origin},
    store::Store,
};
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};

#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    /// Attempts an operation gets before it fails for good.
    pub max_attempts: i32,
    pub limiter: std::sync::Arc<auth::RateLimiter>,
    /// Failed authentications per client address.
    pub auth_failures: std::sync::Arc<auth::RateLimiter<std::net::IpAddr>>,
    /// The alert channels (for `GET /channels` and test notifications).
    pub alerts: std::sync::Arc<hyperfleet_core::settings::AlertSettings>,
    /// Cancelled when the server stops: open event streams end with it
    /// instead of holding the graceful shutdown for its whole grace period.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// HTTP limits from `[api]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: std::time::Duration,
    /// How long a request's body may take to arrive (checked before authentication).
    pub body_timeout: std::time::Duration,
}

impl AppState {
    pub fn new(app: App, max_attempts: i32, rate_per_s: u32, burst: u32) -> Self {
        Self {
            app,
            max_attempts,
            limiter: std::sync::Arc::new(auth::RateLimiter::new(rate_per_s, burst)),
            auth_failures: std::sync::Arc::new(auth::failure_limiter(1, 20)),
            alerts: Default::default(),
            shutdown: Default::default(),
        }
    }

    /// Ends long-lived answers (the dashboard's event streams) when `shutdown` is cancelled.
    pub fn with_shutdown(mut self, shutdown: tokio_util::sync::CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Failed authentications allowed per client address: `per_s` sustained, `burst` at once.
    pub fn with_auth_failure_limit(mut self, per_s: u32, burst: u32) -> Self {
        self.auth_failures = std::sync::Arc::new(auth::failure_limiter(per_s, burst));
        self
    }

    pub fn with_alerts(mut self, alerts: hyperfleet_core::settings::AlertSettings) -> Self {
        self.alerts = std::sync::Arc::new(alerts);
        self
    }

    fn origin(&self, who: &hyperfleet_core::auth::Principal, idempotency_key: Option<String>) -> Result<Origin> {
        Ok(Origin {
            requested_by: who.name.clone(),
            request_id: Some(request_id::current_request_id()),
            idempotency_key: submit::parse_idempotency_key(idempotency_key)?,
            max_attempts: self.max_attempts,
        })
    }
}

#[derive(Tags)]
enum Tag {
    /// The VM inventory and power actions.
    Vms,
    /// Hypervisor hosts, their workers and system facts.
    Hosts,
    /// The operation ledger: every request, attempt and outcome.
    Operations,
    /// Exercise the queue without a hypervisor.
    Diagnostics,
    /// Liveness and readiness.
    System,
    /// API tokens and the audit log.
    Admin,
    /// Cron schedules that enqueue operations.
    Schedules,
    /// Health checks per host, with history.
    Health,
    /// Alerts with their whole history, silences and notification channels.
    Alerts,
    /// Backups of VMs, verified against their manifest and the ledger.
    Backups,
    /// The seed system's API, kept for its dashboard and scripts (deprecated: use /api/v1).
    Seed,
}

type Apis = (
    vms::VmsApi,
    hosts::HostsApi,
    operations::OperationsApi,
    diagnostics::DiagnosticsApi,
    system::SystemApi,
    metrics::MetricsApi,
    tokens::TokensApi,
    schedules::SchedulesApi,
    health::HealthApi,
    alerts::AlertsApi,
    silences::SilencesApi,
    backups::BackupsApi,
    reconcilers::ReconcilersApi,
    seed::SeedApi,
    seed_health::SeedHealthApi,
);

fn service(state: AppState) -> OpenApiService<Apis, ()> {
    let apis = (
        vms::VmsApi { state: state.clone() },
        hosts::HostsApi { state: state.clone() },
        operations::OperationsApi { state: state.clone() },
        diagnostics::DiagnosticsApi { state: state.clone() },
        system::SystemApi { state: state.clone() },
        metrics::MetricsApi { state: state.clone() },
        tokens::TokensApi { state: state.clone() },
        schedules::SchedulesApi { state: state.clone() },
        health::HealthApi { state: state.clone() },
        alerts::AlertsApi { state: state.clone() },
        silences::SilencesApi { state: state.clone() },
        backups::BackupsApi { state: state.clone() },
        reconcilers::ReconcilersApi { state: state.clone() },
        seed::SeedApi { state: state.clone() },
        seed_health::SeedHealthApi { state },
    );
    OpenApiService::new(apis, "Hyperfleet", env!("CARGO_PKG_VERSION")).description(
        "Management plane for libvirt/KVM hypervisor fleets. Every action is an operation in a durable ledger.",
    )
}

/// The whole HTTP application.
pub fn app(state: AppState, limits: Limits) -> impl Endpoint {
    let api = service(state.clone());
    let document = spec::tighten(&api.spec());
    let allow = std::sync::Arc::new(allow::AllowTable::from_spec(&document));
    let docs = api.swagger_ui();
    let served = poem::endpoint::make_sync(move |_| {
        poem::Response::builder().content_type("application/json; charset=utf-8").body(document.clone())
    });
    Route::new()
        .nest("/", api)
        .at("/openapi.json", poem::get(served))
        .nest("/docs", docs)
        // The dashboard sits beside the API, outside its OpenAPI document.
        .nest("/ui", ui::routes(state.clone()))
        .around(ui::root_redirect)
        .around(request_id::body_check)
        .around(move |next, req| {
            let state = state.clone();
            async move {
                match tokio::time::timeout(limits.request_timeout, auth::authenticate(next, req, &state)).await {
                    Ok(r) => r,
                    Err(_) => Err(poem::Error::from_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)),
                }
            }
        })
        .around(move |next, req| request_id::with_request_id(next, req, limits))
        .around(move |next, req| allow::with_allow(next, req, allow.clone()))
}

/// The OpenAPI document, pretty-printed (what `hyperfleet openapi` prints and
/// `openapi/hyperfleet.json` holds).
pub fn spec_json() -> Result<String> {
    Ok(spec::tighten(&service(AppState::new(App::new(Store::detached()?), 1, 1, 1)).spec()))
}
