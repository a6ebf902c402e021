//! What the dashboard's pages show and do beyond the session rules
//! (`ui.rs`): the overview's figures agree with the API, cancel from the
//! detail page, a busy session's end (token expiry, 12 h), and the cookie's
//! TLS form (`__Host-`, `Secure`).

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::{
    helpers::{Backend, Options, TestApp},
    ui::{Browser, failed_operation, no_retries, token},
};

/// The number in the overview tile with `id`.
fn tile(body: &str, id: &str) -> i64 {
    let at = body.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no tile {id}: {body}"));
    let rest = &body[at..];
    let value = &rest[rest.find(r#"class="value">"#).unwrap() + r#"class="value">"#.len()..];
    value[..value.find('<').unwrap()].parse().unwrap()
}

async fn api_count(app: &TestApp, path: &str) -> i64 {
    let r = app.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body["items"].as_array().unwrap().len() as i64
}

async fn the_overview_shows_what_the_api_shows(backend: Backend) {
    let app = TestApp::spawn_with(backend, no_retries()).await;
    for _ in 0..2 {
        failed_operation(&app).await;
    }
    for _ in 0..3 {
        let id = app.noop(0, 0).await;
        app.wait_status(&id, &["succeeded"]).await;
    }
    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    let page = browser.get("/ui").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!((tile(&page.body, "succeeded"), tile(&page.body, "failed")), (3, 2));
    for status in ["queued", "running", "retrying"] {
        let expected = api_count(&app, &format!("/api/v1/operations?status={status}&limit=500")).await;
        assert_eq!(tile(&page.body, status), expected, "{status}");
    }
    assert_eq!((tile(&page.body, "hosts-online"), tile(&page.body, "hosts-offline")), (1, 0));
    for severity in ["critical", "warning", "info"] {
        let expected = api_count(&app, &format!("/api/v1/alerts?status=firing&severity={severity}&limit=500")).await;
        assert_eq!(tile(&page.body, &format!("alerts-{severity}")), expected, "{severity}");
    }
    app.stop().await;
}

async fn an_operator_cancels_from_the_detail_page(backend: Backend) {
    // No worker: the operation stays queued, so the cancel takes effect at once.
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let id = app.noop(0, 0).await;
    let (_, secret) = token(&app, "ops-carol", "operator").await;
    let mut browser = Browser::new(&app);
    browser.login(&secret).await;
    let detail = browser.get(&format!("/ui/operations/{id}")).await;
    let action = format!("/ui/operations/{id}/cancel");
    assert!(detail.body.contains(&format!(r#"action="{action}""#)), "{}", detail.body);
    assert!(!detail.body.contains("/retry\""), "a queued operation offers no retry: {}", detail.body);
    let page = browser.post(&action, &[("csrf", &detail.csrf())]).await;
    assert_eq!((page.status, page.location()), (303, format!("/ui/operations/{id}").as_str()), "{}", page.body);
    let op = app.wait_status(&id, &["cancelled"]).await;
    assert_eq!(op["cancelled_by"], "ops-carol", "{op}");
    let shown = browser.get(page.location()).await;
    assert!(shown.body.contains("ops-carol") && !shown.body.contains(&action), "{}", shown.body);
    app.stop().await;
}

/// A session used every 25 minutes never idles out, but it ends with its
/// token's expiry, and 12 h after login in any case.
async fn busy_sessions_end_with_their_token_and_after_twelve_hours(backend: Backend) {
    let clock = hyperfleet_core::time::Clock::adjustable();
    let app =
        TestApp::spawn_with(backend, Options { worker: false, clock: Some(clock.clone()), ..Options::default() }).await;
    let step = Duration::from_secs(25 * 60);
    let r = app.post("/api/v1/tokens", json!({"name": "hourly", "role": "viewer", "expires_in": "1h"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut short = Browser::new(&app);
    short.login(r.body["secret"].as_str().unwrap()).await;
    let mut long = Browser::new(&app);
    long.login(&app.token).await;
    let mut minutes = 0;
    while minutes + 25 < 12 * 60 {
        clock.advance(step);
        minutes += 25;
        let short_status = short.get("/ui").await.status;
        assert_eq!(short_status, if minutes < 60 { 200 } else { 303 }, "the token expires at 60 min ({minutes} min)");
        assert_eq!(long.get("/ui").await.status, 200, "{minutes} min");
    }
    clock.advance(step);
    assert_eq!(long.get("/ui").await.location(), "/ui/login", "past 12 h");
    app.stop().await;
}

/// Sessions stored, as the database holds them.
async fn stored_sessions(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) FROM ui_sessions";
    if app.database_url.starts_with("sqlite") {
        let mut db = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
    } else {
        let mut db = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
    }
}

/// Page loads spend the token's request budget like API calls; sessions
/// abandoned without a logout are cleared at the token's next login.
async fn sessions_spend_the_token_budget_and_abandoned_ones_are_cleared(backend: Backend) {
    let clock = hyperfleet_core::time::Clock::adjustable();
    let env = vec![
        ("HYPERFLEET__API__RATE_LIMIT_PER_S".to_owned(), "1".to_owned()),
        ("HYPERFLEET__API__RATE_LIMIT_BURST".to_owned(), "3".to_owned()),
    ];
    let options = Options { worker: false, env, clock: Some(clock.clone()), ..Options::default() };
    let app = TestApp::spawn_with(backend, options).await;
    let (_, secret) = token(&app, "busy", "viewer").await;
    let mut browser = Browser::new(&app);
    browser.login(&secret).await;
    let mut statuses = Vec::new();
    let limited = loop {
        let page = browser.get("/ui").await;
        statuses.push(page.status);
        if page.status == 429 || statuses.len() == 20 {
            break page;
        }
    };
    assert_eq!(limited.status, 429, "{statuses:?}");
    assert!(statuses.len() > 3 && statuses[..3].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(limited.headers.contains_key("retry-after"));

    // Two logins left idle, then a third: only the live one stays stored.
    for _ in 0..2 {
        Browser::new(&app).login(&secret).await;
    }
    assert_eq!(stored_sessions(&app).await, 3);
    clock.advance(Duration::from_secs(31 * 60));
    Browser::new(&app).login(&secret).await;
    assert_eq!(stored_sessions(&app).await, 1);
    app.stop().await;
}

crate::on_both_backends!(
    sessions_spend_the_token_budget_and_abandoned_ones_are_cleared,
    the_overview_shows_what_the_api_shows,
    an_operator_cancels_from_the_detail_page,
    busy_sessions_end_with_their_token_and_after_twelve_hours,
);

/// Under TLS the cookie is `__Host-` prefixed and `Secure`; the plain name is not accepted there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tls_the_cookie_is_host_prefixed_and_secure() {
    let (app, _certs, cert) = crate::tls::spawn_tls().await;
    let https = app.address.replacen("http://", "https://", 1);
    // curl, not reqwest: rustls refuses a self-signed certificate as its own CA.
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl").args(["-sS", "--cacert"]).arg(&cert).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let token = format!("token={}", app.token);
    let login =
        curl(&["-i", "-H", "sec-fetch-site: same-origin", "--data-urlencode", &token, &format!("{https}/ui/login")]);
    assert!(login.starts_with("HTTP/1.1 303") || login.starts_with("HTTP/2 303"), "{login}");
    let set = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .unwrap_or_else(|| panic!("no cookie: {login}"))
        .trim()
        .to_owned();
    assert!(set.starts_with("__Host-hf_session="), "{set}");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let status_with = |cookie: &str| {
        curl(&["-o", "/dev/null", "-w", "%{http_code}", "-H", &format!("cookie: {cookie}"), &format!("{https}/ui")])
    };
    assert_eq!(status_with(&cookie), "200");
    let plain = cookie.replacen("__Host-", "", 1);
    assert_eq!(status_with(&plain), "303", "the un-prefixed name is not a session under TLS");
    app.stop().await;
}
