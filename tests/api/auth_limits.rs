//! Failed authentication is limited per client address: a burst of bad tokens
//! is answered 429 `auth_rate_limited` with `Retry-After` (before any token
//! lookup), other addresses are unaffected, and the address recovers. The
//! `Bearer` scheme name is case-insensitive.

use std::net::{IpAddr, Ipv4Addr};

use crate::helpers::{Backend, Options, TestApp};

const UNKNOWN: &str = "hf_0000000000000000000000000000000000000000000000000000000000000000";

fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(ip)).build().unwrap()
}

async fn status_of(client: &reqwest::Client, app: &TestApp, authorization: &str) -> reqwest::Response {
    client.get(format!("{}/api/v1/vms", app.address)).header("authorization", authorization).send().await.unwrap()
}

async fn failed_authentication_is_limited_per_address(backend: Backend) {
    let env = vec![
        ("HYPERFLEET__API__AUTH_FAILURES_PER_S".to_owned(), "1".to_owned()),
        ("HYPERFLEET__API__AUTH_FAILURE_BURST".to_owned(), "5".to_owned()),
    ];
    let app = TestApp::spawn_with(backend, Options { worker: false, env, ..Options::default() }).await;
    let guesser = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let good = format!("Bearer {}", app.token);

    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..30 {
        let r = status_of(&guesser, &app, &format!("Bearer {UNKNOWN}")).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    let limited = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "auth_rate_limited", "{body}");
    assert!(body["request_id"].is_string());

    // Another address is not held back by this one's failures.
    let neighbour = client_from(Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(status_of(&neighbour, &app, &good).await.status(), 200);
    assert_eq!(status_of(&neighbour, &app, &format!("Bearer {UNKNOWN}")).await.status(), 401);

    // The limited address gets in again with a valid token once its budget refills.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match status_of(&guesser, &app, &good).await.status().as_u16() {
            200 => break,
            429 => {}
            other => panic!("a valid token got {other}"),
        }
        assert!(std::time::Instant::now() < deadline, "the address stayed locked out");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    app.stop().await;
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let client = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = status_of(&client, &app, &format!("{scheme} {}", app.token)).await;
        assert_eq!(r.status(), 200, "{scheme}");
    }
    assert_eq!(status_of(&client, &app, &format!("Basic {}", app.token)).await.status(), 401);
    app.stop().await;
}

crate::on_both_backends!(failed_authentication_is_limited_per_address, the_bearer_scheme_is_case_insensitive);
