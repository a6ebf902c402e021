//! Tokens and roles on every endpoint, the audit chain, and hostile input.

use serde_json::json;

use crate::helpers::{Backend, Options, TestApp};

/// Every endpoint with the role it needs and a valid request. A test below
/// fails when the spec has an endpoint this table lacks, so new endpoints
/// must be added here. `{role}` in a body becomes the caller's role (unique names).
const ENDPOINTS: &[(&str, &str, &str, Option<&str>)] = &[
    ("GET", "/api/v1/vms", "viewer", None),
    ("GET", "/api/v1/vms/test", "viewer", None),
    ("POST", "/api/v1/vms/test/start", "operator", Some("{}")),
    ("POST", "/api/v1/vms/test/shutdown", "operator", Some(r#"{"timeout_s": 5}"#)),
    ("POST", "/api/v1/vms/test/reboot", "operator", Some("{}")),
    ("POST", "/api/v1/vms/test/destroy", "operator", Some("{}")),
    ("POST", "/api/v1/vms/test/suspend", "operator", Some("{}")),
    ("POST", "/api/v1/vms/test/resume", "operator", Some("{}")),
    ("GET", "/api/v1/hosts", "viewer", None),
    ("GET", "/api/v1/hosts/hv1", "viewer", None),
    ("GET", "/api/v1/hosts/hv1/system", "viewer", None),
    ("GET", "/api/v1/isos", "viewer", None),
    ("GET", "/api/v1/operations", "viewer", None),
    ("GET", "/api/v1/operations/{running}", "viewer", None),
    ("POST", "/api/v1/operations/{running}/cancel", "operator", Some("{}")),
    ("POST", "/api/v1/operations/{failed}/retry", "operator", Some("{}")),
    ("POST", "/api/v1/diagnostics/noop", "operator", Some("{}")),
    ("GET", "/api/v1/tokens", "admin", None),
    ("POST", "/api/v1/tokens", "admin", Some(r#"{"name": "t-{role}", "role": "viewer"}"#)),
    ("DELETE", "/api/v1/tokens/{token}", "admin", None),
    ("GET", "/api/v1/audit", "admin", None),
    ("GET", "/api/v1/schedules", "viewer", None),
    ("GET", "/api/v1/reconcilers", "viewer", None),
    ("GET", "/metrics", "viewer", None),
    ("GET", "/api/v1/alerts/{alert}/events", "viewer", None),
    ("GET", "/api/v1/alerts/{alert}/notifications", "viewer", None),
    ("POST", "/api/v1/schedules", "admin", Some(r#"{"name": "s-{role}", "cron": "0 0 1 1 *", "kind": "noop"}"#)),
    ("GET", "/api/v1/schedules/{schedule}", "viewer", None),
    ("PATCH", "/api/v1/schedules/{schedule}", "admin", Some(r#"{"jitter_s": 1}"#)),
    ("POST", "/api/v1/schedules/{schedule}/trigger", "operator", Some("{}")),
    ("DELETE", "/api/v1/schedules/{schedule}", "admin", None),
    ("POST", "/api/v1/health/runs", "operator", Some("{}")),
    ("GET", "/api/v1/health/runs", "viewer", None),
    ("GET", "/api/v1/health/runs/{health}", "viewer", None),
    ("GET", "/api/v1/health", "viewer", None),
    ("GET", "/api/v1/alerts", "viewer", None),
    ("POST", "/api/v1/alerts", "operator", Some(r#"{"severity": "info", "title": "t-{role}", "message": "m"}"#)),
    ("GET", "/api/v1/alerts/{alert}", "viewer", None),
    ("POST", "/api/v1/alerts/{alert}/ack", "operator", Some("{}")),
    ("POST", "/api/v1/alerts/{resolvable}/resolve", "operator", Some("{}")),
    ("POST", "/api/v1/alerts/test", "operator", Some("{}")),
    ("GET", "/api/v1/silences", "viewer", None),
    ("POST", "/api/v1/silences", "operator", Some(SILENCE)),
    ("DELETE", "/api/v1/silences/{silence}", "operator", None),
    ("GET", "/api/v1/channels", "viewer", None),
    ("POST", "/api/v1/vms/test/backups", "operator", Some("{}")),
    ("GET", "/api/v1/backups", "viewer", None),
    ("GET", "/api/v1/backups/{backup}", "viewer", None),
    ("POST", "/api/v1/backups/{backup}/verify", "operator", Some(r#"{"level": "image"}"#)),
    ("POST", "/api/v1/backups/prune", "admin", Some(r#"{"vm": "test", "keep_last": 1, "dry_run": true}"#)),
    ("DELETE", "/api/v1/backups/{backup}", "admin", None),
    ("GET", "/api/system/info", "viewer", None),
    ("GET", "/api/vms/list", "viewer", None),
    ("GET", "/api/health/status", "viewer", None),
    ("POST", "/api/health/run", "operator", None),
    ("GET", "/api/alerts/recent", "viewer", None),
    ("GET", "/api/isos/list", "viewer", None),
    ("POST", "/api/vms/test/start", "operator", None),
    ("POST", "/api/vms/test/shutdown", "operator", None),
    ("POST", "/api/vms/test/reboot", "operator", None),
    ("POST", "/api/vms/test/destroy", "operator", None),
];

const SILENCE: &str =
    r#"{"matchers": [{"name": "host", "value": "hv9"}], "ends_at": "2099-01-01T00:00:00Z", "comment": "maintenance"}"#;

const PUBLIC: &[&str] = &["/healthz", "/readyz", "/openapi.json", "/docs/"];

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 0,
        "operator" => 1,
        _ => 2,
    }
}

async fn token(app: &TestApp, name: &str, role: &str) -> String {
    let r = app.post("/api/v1/tokens", json!({"name": name, "role": role})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["secret"].as_str().unwrap().to_owned()
}

async fn every_endpoint_needs_the_right_role(backend: Backend) {
    let receiver = crate::receivers::HttpReceiver::start(&[], 200).await;
    let config =
        format!("[[alerts.channels]]\nname = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"\n", receiver.url("/"));
    // An unknown token on every endpoint is more failures than one address may make.
    let env = crate::helpers::unlimited_rate();
    let options = Options { scheduler: true, config: Some(config), env, ..Default::default() };
    let app = TestApp::spawn_with(backend, options).await;
    let tokens = [
        ("viewer", token(&app, "v", "viewer").await),
        ("operator", token(&app, "o", "operator").await),
        ("admin", app.token.clone()),
    ];
    let running = app.noop(60_000, 0).await;
    app.wait_status(&running, &["running"]).await;
    let r = app.post("/api/v1/vms/test/resume", json!({})).await; // fails: it is running
    let failed = r.body["id"].as_str().unwrap().to_owned();
    app.wait_status(&failed, &["failed"]).await;
    let r = app.post("/api/v1/health/runs", json!({"host": "hv1"})).await;
    let health = r.body["items"][0]["id"].as_str().unwrap().to_owned();
    app.wait_status(&health, &["succeeded"]).await;
    app.wait_for(|| async { app.get("/api/v1/hosts/hv1/system").await.status == 200 }).await;
    let spare = app.post("/api/v1/tokens", json!({"name": "spare", "role": "viewer"})).await.body["token"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let schedule =
        app.post("/api/v1/schedules", json!({"name": "roles", "cron": "0 0 1 1 *", "kind": "noop"})).await.body["id"]
            .as_str()
            .unwrap()
            .to_owned();

    let raise = |title: &'static str| {
        let app = &app;
        async move {
            let r = app.post("/api/v1/alerts", json!({"severity": "warning", "title": title, "message": "m"})).await;
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let alert = raise("roles").await;
    let resolvable = raise("roles, resolved").await;
    let silence = app.post("/api/v1/silences", serde_json::from_str(SILENCE).unwrap()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let backup = crate::backups::recorded_backup(&app, "hv1", "test").await;

    let spec = app.get("/openapi.json").await.body;
    let mut documented = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented += 1;
            let templ = path.replace("{name}", "test").replace("{host}", "hv1");
            let known = ENDPOINTS.iter().any(|(m, p, _, _)| {
                m.eq_ignore_ascii_case(method)
                    && (p == &templ
                        || (p.contains('{') && p.split('/').count() == templ.split('/').count() && {
                            p.split('/')
                                .zip(templ.split('/'))
                                .all(|(a, b)| a == b || (a.starts_with('{') && b.starts_with('{')))
                        }))
            });
            let public = PUBLIC.contains(&path.as_str());
            assert!(known || public, "{method} {path} is not in the role table of this test");
            if !public {
                assert!(item[method]["security"].is_array(), "{method} {path} documents no security requirement");
                for code in ["400", "401", "403", "413", "429", "500"] {
                    assert!(item[method]["responses"][code].is_object(), "{method} {path} does not document {code}");
                }
            }
        }
    }
    assert!(documented >= ENDPOINTS.len());

    for (method, path, needed, body) in ENDPOINTS {
        let path = path
            .replace("{running}", &running)
            .replace("{failed}", &failed)
            .replace("{health}", &health)
            .replace("{token}", &spare)
            .replace("{schedule}", &schedule)
            .replace("{alert}", &alert)
            .replace("{resolvable}", &resolvable)
            .replace("{silence}", &silence)
            .replace("{backup}", &backup);
        let r = app.request_as(None, method, &path, *body, &[]).await;
        assert_eq!(r.status, 401, "{method} {path} without a token: {}", r.body);
        assert_eq!(r.body["code"], "unauthorized");
        let unknown = "hf_0000000000000000000000000000000000000000000000000000000000000000";
        let r = app.request_as(Some(unknown), method, &path, *body, &[]).await;
        assert_eq!(r.status, 401, "{method} {path} with an unknown token");
        for (role, secret) in &tokens {
            let body = body.map(|b| b.replace("{role}", role));
            let r = app.request_as(Some(secret), method, &path, body.as_deref(), &[]).await;
            if rank(role) < rank(needed) {
                assert_eq!(r.status, 403, "{method} {path} as {role}: {}", r.body);
                assert_eq!(r.body["code"], "forbidden");
            } else {
                assert!((200..300).contains(&r.status), "{method} {path} as {role}: {} {}", r.status, r.body);
            }
        }
    }
    for path in PUBLIC {
        let r = app.request_as(None, "GET", path, None, &[]).await;
        assert_eq!(r.status, 200, "{path} is public");
    }
    app.stop().await;
}

async fn tokens_are_attributed_revocable_expiring_and_audited(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let r = app.post("/api/v1/tokens", json!({"name": "ci-bot", "role": "operator", "expires_in": "1h"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let id = r.body["token"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("hf_") && secret.len() == 67);
    assert!(r.body["token"]["expires_at"].is_string());
    assert_eq!(r.headers["location"], format!("/api/v1/tokens/{id}").as_str());

    // Operations record the token's name.
    let r = app.request_as(Some(&secret), "POST", "/api/v1/diagnostics/noop", Some("{}"), &[]).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body["requested_by"], "ci-bot");

    // The secret is never listed; the name is unique.
    let list = app.get("/api/v1/tokens").await;
    assert!(!list.body.to_string().contains(&secret));
    let r = app.post("/api/v1/tokens", json!({"name": "ci-bot", "role": "viewer"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("token_name_taken")));
    for bad in [
        json!({"name": "x", "role": "root"}),
        json!({"name": "a b", "role": "viewer"}),
        json!({"name": "x", "role": "viewer", "expires_in": "soon"}),
    ] {
        let r = app.post("/api/v1/tokens", bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    let r = app.request("DELETE", &format!("/api/v1/tokens/{id}"), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["revoked_at"].is_string());
    let r = app.request_as(Some(&secret), "GET", "/api/v1/vms", None, &[]).await;
    assert_eq!(r.status, 401, "a revoked token is refused");

    let audit = app.get("/api/v1/audit").await.body;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["token.revoke", "token.create", "token.create"], "{audit:#}");
    assert_eq!(audit["items"][0]["actor"], "admin");
    assert!(audit["items"][0]["request_id"].is_string());
    assert_eq!(audit["items"][0]["prev_hash"], audit["items"][1]["hash"]);
    app.stop().await;
}

async fn rate_limit_answers_429_with_retry_after(backend: Backend) {
    let env = vec![
        ("HYPERFLEET__API__RATE_LIMIT_PER_S".to_owned(), "1".to_owned()),
        ("HYPERFLEET__API__RATE_LIMIT_BURST".to_owned(), "5".to_owned()),
    ];
    let app = TestApp::spawn_with(backend, Options { worker: false, env, ..Options::default() }).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = app.get("/api/v1/operations").await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.body["code"], "rate_limited");
            assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        }
    }
    assert!(statuses[..5].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(app.request_as(None, "GET", "/healthz", None, &[]).await.status, 200, "probes are not limited");
    app.stop().await;
}

async fn hostile_input_is_rejected_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in [
        "test;reboot",
        "test%20%26%26%20rm%20-rf%20%2F",
        "..%2F..%2Fetc%2Fpasswd",
        "%24(id)",
        "%60id%60",
        "test%0Aid",
        "a%7Cb",
    ] {
        for action in ["start", "shutdown", "destroy"] {
            let r = app.request("POST", &format!("/api/v1/vms/{name}/{action}"), None, &[]).await;
            assert!([400, 404].contains(&r.status), "{name}/{action}: {} {}", r.status, r.body);
            assert!(r.body["code"].is_string());
        }
        let r = app.request("POST", &format!("/api/vms/{name}/destroy"), None, &[]).await;
        assert!([400, 404].contains(&r.status), "seed {name}: {}", r.status);
    }
    let r = app.request("GET", "/api/v1/hosts/..%2F..%2Fetc/system", None, &[]).await;
    assert!([400, 404].contains(&r.status));
    let big = format!(r#"{{"timeout_s": 5, "pad": "{}"}}"#, "x".repeat(200_000));
    let r = app.request("POST", "/api/v1/vms/test/shutdown", Some(&big), &[]).await;
    assert_eq!(r.status, 413);
    assert!(app.all_operations().await.is_empty(), "hostile requests wrote operations");
    assert_eq!(app.vm_state("test").await, "running");
    app.stop().await;
}

/// A viewer sees where a webhook sends (scheme, host, port), never the
/// credentials in its userinfo, its path or its query.
async fn webhook_urls_are_shown_without_credentials(backend: Backend) {
    let config = "[[alerts.channels]]\nname = \"hook\"\ntype = \"webhook\"\n\
                  url = \"http://hookuser:HOOKPASS123@127.0.0.1:9/hooks/T0/xyz?token=abc\"\n";
    let app = crate::alerts::spawn(backend, config, &[]).await;
    let r = app.post("/api/v1/tokens", json!({"name": "looker", "role": "viewer"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let viewer = r.body["secret"].as_str().unwrap().to_owned();
    let r = app.request_as(Some(&viewer), "GET", "/api/v1/channels", None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = r.body.to_string();
    for secret in ["hookuser", "HOOKPASS123", "T0", "xyz", "token=abc"] {
        assert!(!shown.contains(secret), "{secret} shown to a viewer: {shown}");
    }
    assert_eq!(r.body["items"][0]["target"], "http://***@127.0.0.1:9/***", "{shown}");
}

crate::on_both_backends!(
    webhook_urls_are_shown_without_credentials,
    every_endpoint_needs_the_right_role,
    tokens_are_attributed_revocable_expiring_and_audited,
    rate_limit_answers_429_with_retry_after,
    hostile_input_is_rejected_and_writes_nothing,
    cli_tokens_and_audit_chain_detects_an_edited_row,
);

/// The binary's admin commands against the app's database and data dir (its audit key).
pub(crate) fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hyperfleet"))
        .args(args)
        .env("HYPERFLEET__DATABASE__URL", &app.database_url)
        .env("HYPERFLEET__DATA_DIR", app.options.data_dir.as_deref().unwrap_or(app.dir.path()))
        .output()
        .unwrap()
}

async fn cli_tokens_and_audit_chain_detects_an_edited_row(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let out = cli(&app, &["token", "create", "--name", "from-cli", "--role", "viewer", "--expires-in", "30d"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "the token alone on standard output: {stdout:?}");
    let r = app.request_as(Some(secret), "GET", "/api/v1/vms", None, &[]).await;
    assert_eq!(r.status, 200);
    let r = app.request_as(Some(secret), "POST", "/api/v1/diagnostics/noop", Some("{}"), &[]).await;
    assert_eq!(r.status, 403);
    let list = String::from_utf8(cli(&app, &["token", "list"]).stdout).unwrap();
    assert!(list.contains("from-cli") && list.contains("admin") && !list.contains(secret), "{list}");
    let out = cli(&app, &["token", "revoke", "from-cli"]);
    assert!(out.status.success());
    assert_eq!(app.request_as(Some(secret), "GET", "/api/v1/vms", None, &[]).await.status, 401);

    let out = cli(&app, &["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("intact: 3 events"), "{text}");

    // Edit the second event behind the application's back: verify names it.
    let edit = "UPDATE audit_events SET actor = 'mallory' WHERE id = 2";
    match backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            sqlx::query(edit).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            sqlx::query(edit).execute(&mut c).await.unwrap();
        }
    }
    let out = cli(&app, &["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("BROKEN at event 2"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_configured_certificate() {
    let (app, _certs, cert) = crate::tls::spawn_tls().await;
    let https = app.address.replacen("http://", "https://", 1);
    let curl = |url: String| {
        std::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&cert)
            .args(["-H", &format!("Authorization: Bearer {}", app.token), "-w", "\n%{http_code}", &url])
            .output()
            .unwrap()
    };
    let out = curl(format!("{https}/api/v1/operations"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.ends_with("\n200"), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let plain = curl(format!("{}/healthz", app.address));
    assert!(!String::from_utf8_lossy(&plain.stdout).ends_with("\n200"), "plain HTTP is not served on the TLS port");
    app.stop().await;
}
