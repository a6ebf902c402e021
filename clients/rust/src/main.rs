//! Start or shut down the `test` VM through a progenitor-generated client of
//! `openapi/hyperfleet.json`.
//!
//! Reads `HYPERFLEET_URL` and `HYPERFLEET_TOKEN`; exits 0 when the operation
//! succeeded, non-zero on any unexpected answer, a failed or cancelled
//! operation, or a 30 s timeout.

use std::process::ExitCode;
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod generated {
    // Written by build.rs from openapi/hyperfleet.json.
    include!(concat!(env!("OUT_DIR"), "/hyperfleet_client.rs"));
}

use generated::{types, Client};

const VM: &str = "test";
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rust: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let url = std::env::var("HYPERFLEET_URL").map_err(|_| "HYPERFLEET_URL is not set")?;
    let token = std::env::var("HYPERFLEET_TOKEN").unwrap_or_default();
    let mut headers = reqwest::header::HeaderMap::new();
    let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| format!("token: {e}"))?;
    auth.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, auth);
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let client = Client::new_with_client(&url, http);

    // a. list VMs, find `test`
    // cursor, host, limit, name, state: the first page is enough to find `test`.
    let list = client.vm_list(None, None, None, None, None).await.map_err(|e| format!("vm_list: {e}"))?;
    expect_status(list.status().as_u16(), &[200])?;
    let list = list.into_inner();
    let vm = list.items.iter().find(|v| v.name == VM).ok_or_else(|| {
        let names: Vec<_> = list.items.iter().map(|v| v.name.as_str()).collect();
        format!("no VM named {VM:?} among {names:?}")
    })?;
    println!("vm {} on {}: {}", vm.name, vm.host, vm.state);

    // b. shut it down if running, else start it
    let (action, submitted) = if vm.state == types::VmState::Running {
        let body = types::ShutdownRequest { timeout_s: std::num::NonZeroU32::new(10), force: None };
        // Path parameters with a pattern are checked newtypes in the generated client.
        let name: types::VmShutdownName = VM.parse().map_err(|e| format!("vm name: {e}"))?;
        ("shutdown", client.vm_shutdown(&name, None, None, &body).await)
    } else {
        let body = types::PowerRequest {};
        let name: types::VmStartName = VM.parse().map_err(|e| format!("vm name: {e}"))?;
        ("start", client.vm_start(&name, None, None, &body).await)
    };
    let submitted = submitted.map_err(|e| format!("vm_{action}: {e}"))?;
    expect_status(submitted.status().as_u16(), &[202])?;
    let location = submitted
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("202 without a Location header")?;
    let op = submitted.into_inner();
    println!("{action}: operation {} {} (Location: {location})", op.id, op.status);

    // c. poll the operation
    let id = op.id;
    let started = Instant::now();
    let op = loop {
        let got = client.operation_get(&id).await.map_err(|e| format!("operation_get: {e}"))?;
        expect_status(got.status().as_u16(), &[200])?;
        let op = got.into_inner();
        match op.status {
            types::OperationStatus::Succeeded => break op,
            types::OperationStatus::Failed | types::OperationStatus::Cancelled => {
                return Err(format!(
                    "operation {} {}: {} {}",
                    op.id,
                    op.status,
                    op.error_code.as_deref().unwrap_or(""),
                    op.last_error.as_deref().unwrap_or("")
                ))
            }
            _ if started.elapsed() > DEADLINE => {
                return Err(format!("operation {} still {} after 30 s", op.id, op.status))
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    println!("operation {} {}: {}", op.id, op.kind, op.status);

    // d. the attempts
    if op.attempts.is_empty() {
        return Err("succeeded operation lists no attempts".into());
    }
    for a in &op.attempts {
        println!(
            "  attempt {} worker={} outcome={}",
            a.attempt,
            a.worker,
            a.outcome.map_or_else(|| "-".to_owned(), |o| o.to_string())
        );
    }
    Ok(())
}

fn expect_status(got: u16, want: &[u16]) -> Result<(), String> {
    if want.contains(&got) {
        Ok(())
    } else {
        Err(format!("unexpected HTTP {got}"))
    }
}
