//! The dashboard over HTTP, as a browser meets it: login and its cookie,
//! the session's end (logout, revoked token, idle), CSRF and same-origin
//! checks on every POST, roles, escaping and headers (the operations page's
//! filters against `/api/v1/operations`: `ui_filters.rs`).

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, Options, TestApp};

/// A browser: no redirects followed, one session cookie, same-origin POSTs.
pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

pub(crate) struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers.get("location").map_or("", |v| v.to_str().unwrap())
    }

    /// The CSRF token the page's forms carry.
    /// The buttons of the page's own content (the top bar's Live and Log out
    /// are everyone's): what a role may do here.
    pub(crate) fn buttons_in_main(&self) -> usize {
        let main = self.body.split_once("<main>").map_or("", |(_, rest)| rest);
        main.split_once("</main>").map_or(main, |(m, _)| m).matches("<button").count()
    }

    pub(crate) fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).unwrap_or_else(|| panic!("no CSRF field: {}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The operation ids listed, in order.
    pub(crate) fn operation_ids(&self) -> Vec<String> {
        self.body.split(r#"<tr data-id=""#).skip(1).map(|s| s[..s.find('"').unwrap()].to_owned()).collect()
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: app.address.clone(), cookie: None }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let resp = req.send().await.unwrap();
        Page { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await.unwrap() }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    /// A form POST from a page of this origin (as a browser's fetch metadata says).
    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[("sec-fetch-site", "same-origin")]).await
    }

    pub(crate) async fn post_with(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// Logs in with `token` and keeps the session cookie.
    pub(crate) async fn login(&mut self, token: &str) -> Page {
        let page = self.post("/ui/login", &[("token", token)]).await;
        assert_eq!((page.status, page.location()), (303, "/ui"), "{}", page.body);
        let set = page.headers["set-cookie"].to_str().unwrap();
        self.cookie = Some(set.split(';').next().unwrap().to_owned());
        page
    }
}

/// Form fields or headers.
type Fields<'a> = Vec<(&'a str, &'a str)>;

/// A token with `role`; returns (id, secret).
pub(crate) async fn token(app: &TestApp, name: &str, role: &str) -> (String, String) {
    let r = app.post("/api/v1/tokens", json!({"name": name, "role": role})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (r.body["token"]["id"].as_str().unwrap().to_owned(), r.body["secret"].as_str().unwrap().to_owned())
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    let r = app.get("/api/v1/audit").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_owned(), e["action"].as_str().unwrap().to_owned()))
        .collect()
}

/// An operation that failed for good (max one attempt, and it fails).
pub(crate) async fn failed_operation(app: &TestApp) -> String {
    let id = app.noop(0, 5).await;
    app.wait_status(&id, &["failed"]).await;
    id
}

pub(crate) fn no_retries() -> Options {
    Options { max_attempts: 1, ..Options::default() }
}

fn assert_ui_headers(page: &Page) {
    let h = |name: &str| page.headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let csp = h("content-security-policy");
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
}

async fn login_sets_a_strict_cookie_and_logout_ends_the_session(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let mut browser = Browser::new(&app);

    let root = browser.get("/").await;
    assert_eq!((root.status, root.location()), (303, "/ui"));
    let anonymous = browser.get("/ui").await;
    assert_eq!((anonymous.status, anonymous.location()), (303, "/ui/login"));
    assert_ui_headers(&anonymous);
    let form = browser.get("/ui/login").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"name="token""#), "{}", form.body);
    assert_ui_headers(&form);
    for asset in ["/ui/static/app.css", "/ui/static/app.js"] {
        let page = browser.get(asset).await;
        assert_eq!(page.status, 200, "{asset}");
        assert_ui_headers(&page);
    }

    let login = browser.login(&app.token).await;
    let set = login.headers["set-cookie"].to_str().unwrap();
    // Plain HTTP on loopback: no `Secure` (a browser would drop it), so no `__Host-` prefix either.
    assert!(set.starts_with("hf_session="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Secure"), "{set}");

    let overview = browser.get("/ui").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("Overview") && overview.body.contains(r#"id="queued""#), "{}", overview.body);
    assert_ui_headers(&overview);
    let actions = audit_actions(&app).await;
    assert!(actions.iter().any(|(_, a)| a == "session.login"), "{actions:?}");

    let logout = browser.post("/ui/logout", &[("csrf", &overview.csrf())]).await;
    assert_eq!((logout.status, logout.location()), (303, "/ui/login"));
    assert!(logout.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    // The old cookie is worth nothing now.
    assert_eq!(browser.get("/ui").await.location(), "/ui/login");
    let actions = audit_actions(&app).await;
    assert!(actions.iter().any(|(_, a)| a == "session.logout"), "{actions:?}");
    app.stop().await;
}

async fn wrong_tokens_get_401_and_then_the_address_is_limited(backend: Backend) {
    let env = vec![
        ("HYPERFLEET__API__AUTH_FAILURES_PER_S".to_owned(), "1".to_owned()),
        ("HYPERFLEET__API__AUTH_FAILURE_BURST".to_owned(), "3".to_owned()),
    ];
    let app = TestApp::spawn_with(backend, Options { worker: false, env, ..Options::default() }).await;
    let browser = Browser::new(&app);
    let wrong = "hf_0000000000000000000000000000000000000000000000000000000000000000";
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..20 {
        let page = browser.post("/ui/login", &[("token", wrong)]).await;
        assert!(page.headers.get("set-cookie").is_none());
        statuses.push(page.status);
        if page.status == 429 {
            limited = Some(page);
            break;
        }
    }
    assert!(statuses[..3].iter().all(|s| *s == 401), "{statuses:?}");
    let limited = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    assert!(limited.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(limited.body.contains("Too many failed logins"), "{}", limited.body);
    app.stop().await;
}

async fn posts_need_the_session_csrf_token_and_the_same_origin(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    let csrf = browser.get("/ui").await.csrf();
    let other_session_csrf = {
        let mut other = Browser::new(&app);
        other.login(&app.token).await;
        other.get("/ui").await.csrf()
    };
    let host = app.address.trim_start_matches("http://").to_owned();
    let same_origin = app.address.clone();
    let refused: Vec<(&str, Fields<'_>, Fields<'_>)> = vec![
        ("no token", vec![], vec![("sec-fetch-site", "same-origin")]),
        ("a wrong token", vec![("csrf", "0123")], vec![("sec-fetch-site", "same-origin")]),
        ("another session's token", vec![("csrf", &other_session_csrf)], vec![("sec-fetch-site", "same-origin")]),
        ("cross-site", vec![("csrf", &csrf)], vec![("sec-fetch-site", "cross-site")]),
        ("a foreign origin", vec![("csrf", &csrf)], vec![("host", &host), ("origin", "http://evil.example")]),
        ("no origin at all", vec![("csrf", &csrf)], vec![]),
    ];
    for (case, form, headers) in &refused {
        let page = browser.post_with("/ui/logout", form, headers).await;
        assert_eq!(page.status, 403, "{case}: {}", page.body);
        assert_ui_headers(&page);
    }
    // A forged login from another site is refused too.
    let page = browser.post_with("/ui/login", &[("token", &app.token)], &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(page.status, 403);
    // None of them ended the session; the genuine form does.
    assert_eq!(browser.get("/ui").await.status, 200);
    let page = browser.post_with("/ui/logout", &[("csrf", &csrf)], &[("host", &host), ("origin", &same_origin)]).await;
    assert_eq!((page.status, page.location()), (303, "/ui/login"));
    app.stop().await;
}

async fn a_viewer_sees_no_buttons_and_gets_403_on_post(backend: Backend) {
    let app = TestApp::spawn_with(backend, no_retries()).await;
    let failed = failed_operation(&app).await;
    let (_, secret) = token(&app, "watcher", "viewer").await;
    let mut viewer = Browser::new(&app);
    viewer.login(&secret).await;
    let detail = viewer.get(&format!("/ui/operations/{failed}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(detail.body.contains("watcher · viewer"), "{}", detail.body);
    assert!(!detail.body.contains("/retry") && !detail.body.contains("/cancel"), "{}", detail.body);
    let page = viewer.post(&format!("/ui/operations/{failed}/retry"), &[("csrf", &detail.csrf())]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(app.all_operations().await.len(), 1, "the viewer's retry created nothing");

    let mut admin = Browser::new(&app);
    admin.login(&app.token).await;
    let detail = admin.get(&format!("/ui/operations/{failed}")).await;
    assert!(detail.body.contains(&format!(r#"action="/ui/operations/{failed}/retry""#)), "{}", detail.body);
    app.stop().await;
}

async fn revoking_the_token_or_idling_ends_the_session(backend: Backend) {
    let clock = hyperfleet_core::time::Clock::adjustable();
    let options = Options { worker: false, clock: Some(clock.clone()), ..Options::default() };
    let app = TestApp::spawn_with(backend, options).await;
    let (id, secret) = token(&app, "ops-bob", "operator").await;
    let mut browser = Browser::new(&app);
    browser.login(&secret).await;
    assert_eq!(browser.get("/ui/operations").await.status, 200);
    let r = app.request("DELETE", &format!("/api/v1/tokens/{id}"), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = browser.get("/ui/operations").await;
    assert_eq!((page.status, page.location()), (303, "/ui/login"));

    let mut idle = Browser::new(&app);
    idle.login(&app.token).await;
    assert_eq!(idle.get("/ui").await.status, 200);
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(idle.get("/ui").await.status, 200, "a request keeps the session alive");
    clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(idle.get("/ui").await.location(), "/ui/login", "idle for 31 min");
    app.stop().await;
}

/// Rewrites an operation as a hostile inventory or error message would leave it.
async fn make_hostile(app: &TestApp, id: &str) {
    let sql = format!(
        "UPDATE operations SET vm = '<script>alert(1)</script>', \
         last_error = '<script>alert(2)</script><img src=x>' WHERE id = '{id}'"
    );
    if app.database_url.starts_with("sqlite") {
        let mut db = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut db).await.unwrap();
    } else {
        let mut db = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut db).await.unwrap();
    }
}

async fn vm_names_and_error_messages_render_escaped(backend: Backend) {
    let app = TestApp::spawn_with(backend, no_retries()).await;
    let failed = failed_operation(&app).await;
    make_hostile(&app, &failed).await;
    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    for path in [format!("/ui/operations/{failed}"), "/ui/operations".to_owned()] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x>"), "{path}: {}", page.body);
        assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path}: {}", page.body);
        assert!(page.body.contains("&lt;script&gt;alert(2)&lt;/script&gt;&lt;img src=x&gt;"), "{path}");
        // The only script is the dashboard's own file.
        assert_eq!(page.body.matches("<script").count(), 1, "{path}");
    }
    app.stop().await;
}

async fn retry_from_the_detail_page_is_recorded_with_the_token_name(backend: Backend) {
    let app = TestApp::spawn_with(backend, no_retries()).await;
    let failed = failed_operation(&app).await;
    let (_, secret) = token(&app, "ops-alice", "operator").await;
    let mut browser = Browser::new(&app);
    browser.login(&secret).await;
    let detail = browser.get(&format!("/ui/operations/{failed}")).await;
    let page = browser.post(&format!("/ui/operations/{failed}/retry"), &[("csrf", &detail.csrf())]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let new_id = page.location().strip_prefix("/ui/operations/").unwrap().to_owned();
    assert_ne!(new_id, failed);
    let op = app.operation(&new_id).await;
    assert_eq!(op["retry_of"], failed.as_str(), "{op}");
    assert_eq!(op["requested_by"], "ops-alice", "{op}");
    let shown = browser.get(page.location()).await;
    assert!(shown.body.contains(&format!(r#"href="/ui/operations/{failed}""#)), "{}", shown.body);
    app.stop().await;
}

crate::on_both_backends!(
    login_sets_a_strict_cookie_and_logout_ends_the_session,
    wrong_tokens_get_401_and_then_the_address_is_limited,
    posts_need_the_session_csrf_token_and_the_same_origin,
    a_viewer_sees_no_buttons_and_gets_403_on_post,
    revoking_the_token_or_idling_ends_the_session,
    vm_names_and_error_messages_render_escaped,
    retry_from_the_detail_page_is_recorded_with_the_token_name,
);
