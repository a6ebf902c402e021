//! The dashboard in a real browser: Debian's `chromium`, headless, driven
//! over WebDriver (`chromedriver` on loopback, the `fantoccini` client).
//! Runs alone with `cargo test --test api browser::`.
//!
//! Without chromium and chromedriver the test prints `BROWSER TESTS SKIPPED`
//! and passes — unless `HYPERFLEET_REQUIRE_BROWSER=1` (`scripts/test.sh`
//! sets it), when it fails. Every page visited is saved as a screenshot under
//! `target/ui-screenshots/`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::{
    helpers::{Options, TestApp, free_port},
    ui::token,
};

/// How long the browser gets for anything the page should show.
const PATIENCE: Duration = Duration::from_secs(20);

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// chromium and chromedriver, or why the tests cannot run.
fn find_browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = on_path("chromium").ok_or("no `chromium` on PATH (scripts/setup.sh installs it)")?;
    let driver = on_path("chromedriver").ok_or("no `chromedriver` on PATH (Debian package chromium-driver)")?;
    Ok((chromium, driver))
}

/// chromedriver on a loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(binary: &Path) -> Self {
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let driver = Self { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A new headless chromium session.
    async fn session(&self, chromium: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                         "--disable-background-networking", "--disable-sync"],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        // Both of rustls's providers are in the build: name one, as the binary does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientBuilder::rustls().unwrap().capabilities(caps).connect(&self.url).await.expect("a chromium session")
    }

    /// The browser console since the last call (chromedriver's log endpoint).
    async fn console(&self, client: &Client) -> Vec<Value> {
        let session = client.session_id().await.unwrap().unwrap();
        let resp = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["value"].as_array().cloned().unwrap_or_else(|| panic!("no console log: {body}"))
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

/// Waits until `css` matches an element (with a deadline).
async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(PATIENCE)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` never appeared: {e}"))
}

/// Waits until `script` (a JS expression) is true in the page.
async fn until(client: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if client.execute(&format!("return !!({script});"), vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: `{script}` never held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Marks the loaded page, so a test can tell an update in place from a reload.
async fn mark(client: &Client) {
    client.execute("window.hyperfleetMark = 1;", vec![]).await.unwrap();
}

async fn still_marked(client: &Client) -> bool {
    client.execute("return window.hyperfleetMark === 1;", vec![]).await.unwrap() == Value::Bool(true)
}

async fn login(client: &Client, app: &TestApp, secret: &str) {
    client.goto(&format!("{}/", app.address)).await.unwrap();
    let input = find(client, "input#token").await;
    input.send_keys(secret).await.unwrap();
    client.find(Locator::Css("form.login button[type=submit]")).await.unwrap().click().await.unwrap();
    find(client, "#overview").await;
}

/// The console's entries that are errors (script errors, CSP violations).
fn errors(entries: &[Value]) -> Vec<&Value> {
    entries.iter().filter(|e| e["level"] == "SEVERE").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let (chromium, driver_binary) = match find_browser() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("{}", "#".repeat(72));
            eprintln!("## BROWSER TESTS SKIPPED: {why}");
            eprintln!("{}", "#".repeat(72));
            assert!(
                std::env::var("HYPERFLEET_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "HYPERFLEET_REQUIRE_BROWSER=1 but the browser tests cannot run: {why}"
            );
            return;
        }
    };
    let app =
        TestApp::spawn_with(crate::helpers::Backend::Sqlite, Options { max_attempts: 1, ..Options::default() }).await;
    let driver = Driver::start(&driver_binary).await;
    let admin = driver.session(&chromium).await;

    // Log in with a token: the login page, then the overview.
    admin.goto(&format!("{}/ui/login", app.address)).await.unwrap();
    find(&admin, "input#token").await;
    screenshot(&admin, "login").await;
    login(&admin, &app, &app.token).await;
    assert_eq!(admin.current_url().await.unwrap().path(), "/ui");

    // An operation submitted through the API appears on the open list without a reload.
    admin.goto(&format!("{}/ui/operations", app.address)).await.unwrap();
    find(&admin, "button#live.live").await;
    mark(&admin).await;
    let first = app.noop(0, 0).await;
    let bar = find(&admin, "#new-bar:not([hidden])").await;
    assert_eq!(bar.text().await.unwrap(), "1 new — show");
    screenshot(&admin, "operations-new-bar").await;
    find(&admin, "#show-new").await.click().await.unwrap();
    find(&admin, &format!(r#"#rows tr[data-id="{first}"]"#)).await;
    // …and its row follows the operation to the end.
    find(&admin, &format!(r#"#rows tr[data-id="{first}"][data-status="succeeded"]"#)).await;
    assert!(still_marked(&admin).await, "the page was reloaded");
    screenshot(&admin, "operations").await;

    // Paused: changes wait until the reader resumes.
    find(&admin, "button#live").await.click().await.unwrap();
    find(&admin, "button#live.paused").await;
    let while_paused = app.noop(0, 0).await;
    app.wait_status(&while_paused, &["succeeded"]).await;
    let bar_hidden = admin.execute("return document.getElementById('new-bar').hidden;", vec![]).await.unwrap();
    assert_eq!(bar_hidden, Value::Bool(true), "no update while paused");
    find(&admin, "button#live").await.click().await.unwrap();
    find(&admin, "#new-bar:not([hidden])").await;
    assert!(still_marked(&admin).await);

    // An operation that fails; its page offers Retry; the retry is a new operation.
    // Each attempt takes a while, so the retry's page is open while it runs.
    let failed = app.noop(1500, 5).await;
    app.wait_status(&failed, &["failed"]).await;
    admin.goto(&format!("{}/ui/operations/{failed}", app.address)).await.unwrap();
    find(&admin, "#op-live .status.failed").await;
    screenshot(&admin, "operation-failed").await;
    let retry = find(&admin, &format!(r#"form[action="/ui/operations/{failed}/retry"] button"#)).await;
    retry.click().await.unwrap();
    admin.accept_alert().await.unwrap();
    until(&admin, "the retry's page opens", &format!("location.pathname !== '/ui/operations/{failed}'")).await;
    let retried = admin.current_url().await.unwrap().path().trim_start_matches("/ui/operations/").to_owned();
    assert_eq!(app.operation(&retried).await["retry_of"], failed.as_str());
    find(&admin, &format!(r#"#op-live a[href="/ui/operations/{failed}"]"#)).await;
    // The retry fails too (same parameters): its open page shows it live.
    mark(&admin).await;
    find(&admin, "#op-live .status.failed").await;
    assert!(still_marked(&admin).await, "the detail page was reloaded");
    screenshot(&admin, "operation").await;
    admin.goto(&format!("{}/ui", app.address)).await.unwrap();
    find(&admin, "#overview").await;
    screenshot(&admin, "overview").await;

    let admin_console = driver.console(&admin).await;
    assert!(errors(&admin_console).is_empty(), "console errors: {admin_console:#?}");
    admin.close().await.unwrap();

    // A viewer sees no buttons for actions.
    let (_, secret) = token(&app, "watcher", "viewer").await;
    let viewer = driver.session(&chromium).await;
    login(&viewer, &app, &secret).await;
    let actions = "form[action$='/retry'], form[action$='/cancel'], form#bulk, input[name=id]";
    for (path, name) in
        [("/ui/operations".to_owned(), "viewer-operations"), (format!("/ui/operations/{failed}"), "viewer-operation")]
    {
        viewer.goto(&format!("{}{path}", app.address)).await.unwrap();
        find(&viewer, "[data-live]").await;
        assert!(viewer.find_all(Locator::Css(actions)).await.unwrap().is_empty(), "{path} shows actions");
        screenshot(&viewer, name).await;
    }
    let viewer_console = driver.console(&viewer).await;
    assert!(errors(&viewer_console).is_empty(), "console errors: {viewer_console:#?}");

    // The console check sees a CSP violation when there is one: inline script is refused.
    viewer
        .execute("const s = document.createElement('script'); s.textContent = '1'; document.body.append(s);", vec![])
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let console = driver.console(&viewer).await;
        let refused = errors(&console).iter().any(|e| e["message"].as_str().unwrap_or("").contains("Content Security"));
        if refused {
            break;
        }
        assert!(Instant::now() < deadline, "an inline script was not reported: {console:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    viewer.close().await.unwrap();
    app.stop().await;
}
