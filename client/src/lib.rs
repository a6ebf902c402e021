//! The Hyperfleet API client, generated at build time by progenitor from the
//! committed `openapi/hyperfleet.json` (see `build.rs`): the CLI is a client of
//! the same document schemathesis and the other generated clients hold the
//! server to, so a change that breaks the contract breaks this build.
//!
//! `Client` has one builder method per `operationId` (`vm_start`,
//! `operation_list`, …); `types` holds the request and response shapes.

// Generated code is not held to the workspace's lints (its regexes are `unwrap`ped
// constants of the spec).
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used, unused_imports, dead_code, rust_2018_idioms)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/hyperfleet_client.rs"));
}

pub use generated::*;
pub use progenitor_client::{Error, ResponseValue};
pub use reqwest;
