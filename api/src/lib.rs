//! Hyperfleet's front door: a poem-openapi server over the ledger. Handlers
//! are thin — parse the input into domain types, call one `core` function,
//! map the result — and never touch SQL or libvirt.

mod diagnostics;
pub mod error;
mod hosts;
mod operations;
pub mod request_id;
mod seed;
mod submit;
mod system;
pub mod views;
mod vms;

use hyperfleet_core::{Result, commands::Origin, store::Store};
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Attempts an operation gets before it fails for good.
    pub max_attempts: i32,
}

impl AppState {
    fn origin(&self, idempotency_key: Option<String>) -> Result<Origin> {
        Ok(Origin {
            // Until tokens exist every caller is anonymous; the API binds to loopback by default.
            requested_by: "anonymous".into(),
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
    /// The seed system's API, kept for its dashboard and scripts (deprecated: use /api/v1).
    Seed,
}

type Apis = (
    vms::VmsApi,
    hosts::HostsApi,
    operations::OperationsApi,
    diagnostics::DiagnosticsApi,
    system::SystemApi,
    seed::SeedApi,
);

fn service(state: AppState) -> OpenApiService<Apis, ()> {
    let apis = (
        vms::VmsApi { state: state.clone() },
        hosts::HostsApi { state: state.clone() },
        operations::OperationsApi { state: state.clone() },
        diagnostics::DiagnosticsApi { state: state.clone() },
        system::SystemApi { state: state.clone() },
        seed::SeedApi { state },
    );
    OpenApiService::new(apis, "Hyperfleet", env!("CARGO_PKG_VERSION")).description(
        "Management plane for libvirt/KVM hypervisor fleets. Every action is an operation in a durable ledger.",
    )
}

/// The whole HTTP application.
pub fn app(state: AppState, body_limit: usize) -> impl Endpoint {
    let api = service(state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .around(move |next, req| request_id::with_request_id(next, req, body_limit))
}

/// The OpenAPI document, pretty-printed (what `hyperfleet openapi` prints and
/// `openapi/hyperfleet.json` holds).
pub fn spec_json() -> Result<String> {
    Ok(service(AppState { store: Store::detached()?, max_attempts: 1 }).spec())
}
