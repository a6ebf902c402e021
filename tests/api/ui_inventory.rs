//! `GET /api/v1/vms` a page at a time with its filters, and the dashboard's
//! VMs, Hosts and Health pages: the same rows as the API, power actions for
//! operators only (destroy confirmed first), CSRF, and escaping.

use serde_json::Value;
use sqlx::Connection;

use crate::{
    helpers::{Backend, Options, TestApp, fresh_database, private_libvirt},
    ui::{Browser, Page, token},
};

/// VMs on the private libvirt: names chosen so that `_` in a filter must be
/// taken literally (`b_` matches `web_3` only, not `db-1`).
const VMS: &[&str] = &["web-1", "web-2", "web_3", "db-1", "db-2", "Test-A", "zz"];

async fn spawn_with_vms(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let uri = private_libvirt(dir.path(), VMS);
    let database_url = fresh_database(backend, dir.path()).await;
    let app = TestApp::spawn_at(dir, database_url, Options { libvirt_uri: Some(uri), ..Options::default() }).await;
    app.wait_for(|| async {
        app.get("/api/v1/vms?limit=500").await.body["items"].as_array().unwrap().len() == VMS.len()
    })
    .await;
    app
}

/// Runs one statement on the app's database (to plant hostile text).
async fn exec(app: &TestApp, sql: &str) {
    if app.database_url.starts_with("sqlite") {
        let mut db = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut db).await.unwrap();
    } else {
        let mut db = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut db).await.unwrap();
    }
}

fn names(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_owned()).collect()
}

/// The VM names a dashboard page lists, in order.
fn page_vms(page: &Page) -> Vec<String> {
    page.body.split(r#"<tr data-vm=""#).skip(1).map(|s| s[..s.find('"').unwrap()].to_owned()).collect()
}

async fn the_vm_list_pages_and_filters(backend: Backend) {
    let app = spawn_with_vms(backend).await;
    let mut sorted: Vec<String> = VMS.iter().map(|s| (*s).to_owned()).collect();
    sorted.sort();

    // The first page of the default size holds them all, as today's clients expect.
    let all = app.get("/api/v1/vms").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(names(&all.body), sorted);
    assert!(all.body.get("next_cursor").is_none(), "{}", all.body);

    // Pages of two walk the same list.
    let (mut walked, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/vms?limit=2&cursor={c}"),
            None => "/api/v1/vms?limit=2".to_owned(),
        };
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(names(&r.body).len() <= 2);
        walked.extend(names(&r.body));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, sorted);

    for (filter, expected) in [
        ("name=web", vec!["web-1", "web-2", "web_3"]),
        ("name=WEB-", vec!["web-1", "web-2"]),
        ("name=b_", vec!["web_3"]),
        ("state=running", sorted.iter().map(String::as_str).collect()),
        ("state=shutoff", vec![]),
        ("host=hv1&name=db", vec!["db-1", "db-2"]),
        ("host=hv9", vec![]),
    ] {
        let r = app.get(&format!("/api/v1/vms?{filter}")).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(names(&r.body), expected, "{filter}");
    }
    for bad in ["limit=0", "limit=501", "state=on", "name=a%20b", "cursor=web-1", "host=-x"] {
        let r = app.get(&format!("/api/v1/vms?{bad}")).await;
        assert_eq!(r.status / 100, 4, "{bad}: {}", r.body);
    }

    // The dashboard lists what the API lists, filter for filter, page for page.
    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    for filter in ["", "name=web", "name=b_", "state=running&host=hv1", "state=paused", "limit=3"] {
        let api = app.get(&format!("/api/v1/vms?{filter}")).await;
        let page = browser.get(&format!("/ui/vms?{filter}")).await;
        assert_eq!(page.status, 200, "{filter}: {}", page.body);
        assert_eq!(page_vms(&page), names(&api.body), "{filter}");
        if let Some(next) = api.body["next_cursor"].as_str() {
            assert!(page.body.contains(&format!("cursor={next}")), "{filter}: {}", page.body);
        }
    }
    let bad = browser.get("/ui/vms?state=on").await;
    assert!(bad.status == 422 && bad.body.contains("on"), "{}: {}", bad.status, bad.body);
    app.stop().await;
}

async fn operators_act_on_a_vm_and_destroy_is_confirmed_first(backend: Backend) {
    let app = spawn_with_vms(backend).await;
    let (_, viewer_secret) = token(&app, "watcher", "viewer").await;
    let mut viewer = Browser::new(&app);
    viewer.login(&viewer_secret).await;
    let seen = viewer.get("/ui/vms/hv1/web-1").await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.body.contains("running"), "{}", seen.body);
    assert_eq!(seen.buttons_in_main(), 0, "a viewer sees no buttons: {}", seen.body);
    let refused = viewer.post("/ui/vms/hv1/web-1/shutdown", &[("csrf", &seen.csrf())]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let (_, secret) = token(&app, "ops-dana", "operator").await;
    let mut operator = Browser::new(&app);
    operator.login(&secret).await;
    let page = operator.get("/ui/vms/hv1/web-1").await;
    for action in ["shutdown", "reboot", "suspend", "destroy"] {
        assert!(page.body.contains(&format!(r#"action="/ui/vms/hv1/web-1/{action}""#)), "{action}: {}", page.body);
    }
    assert!(!page.body.contains(r#"action="/ui/vms/hv1/web-1/start""#), "a running VM offers no start");
    let csrf = page.csrf();
    let forged = operator.post("/ui/vms/hv1/web-1/reboot", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let cross =
        operator.post_with("/ui/vms/hv1/web-1/reboot", &[("csrf", &csrf)], &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(cross.status, 403, "{}", cross.body);
    assert!(app.all_operations().await.is_empty(), "refused posts changed nothing");

    // Destroy without the confirmation page's answer only asks.
    let ask = operator.post("/ui/vms/hv1/web-1/destroy", &[("csrf", &csrf)]).await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains(r#"name="confirmed" value="yes""#), "{}", ask.body);
    assert!(app.all_operations().await.is_empty(), "asking destroyed nothing");
    let done = operator.post("/ui/vms/hv1/web-1/destroy", &[("csrf", &csrf), ("confirmed", "yes")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let id = done.location().strip_prefix("/ui/operations/").unwrap().to_owned();
    let op = app.wait_status(&id, &["succeeded"]).await;
    assert_eq!((op["kind"].as_str(), op["vm"].as_str()), (Some("vm.destroy"), Some("web-1")), "{op}");
    assert_eq!(op["requested_by"], "ops-dana", "{op}");
    app.wait_for(|| async { app.vm_state("web-1").await == "shutoff" }).await;

    // The VM's page lists it among its recent operations and now offers start.
    let after = operator.get("/ui/vms/hv1/web-1").await;
    assert!(after.body.contains(&format!(r#"<tr data-id="{id}""#)), "{}", after.body);
    assert!(after.body.contains(r#"action="/ui/vms/hv1/web-1/start""#), "{}", after.body);
    let missing = operator.get("/ui/vms/hv1/nope").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    app.stop().await;
}

async fn hosts_and_health_pages_show_the_fleet_and_escape_what_they_show(backend: Backend) {
    let app = spawn_with_vms(backend).await;
    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    let hosts = browser.get("/ui/hosts").await;
    assert_eq!(hosts.status, 200, "{}", hosts.body);
    assert!(hosts.body.contains(r#"<tr data-host="hv1""#) && hosts.body.contains("online"), "{}", hosts.body);
    assert!(hosts.body.contains(&format!("{} running", VMS.len())), "{}", hosts.body);

    // Run the checks from the Health page; the run is recorded with the token's name.
    let health = browser.get("/ui/health").await;
    let run = browser.post("/ui/health/run", &[("csrf", &health.csrf())]).await;
    assert_eq!((run.status, run.location()), (303, "/ui/operations?kind=health.run"), "{}", run.body);
    let ops = app.get("/api/v1/operations?kind=health.run").await;
    let id = ops.body["items"][0]["id"].as_str().unwrap().to_owned();
    let op = app.wait_status(&id, &["succeeded", "failed"]).await;
    assert_eq!(op["requested_by"], "admin", "{op}");
    let api = app.get("/api/v1/health").await;
    let checks: Vec<String> = api.body["hosts"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap().to_owned())
        .collect();
    assert!(!checks.is_empty(), "{}", api.body);
    for page in [browser.get("/ui/health").await, browser.get("/ui/hosts/hv1").await] {
        assert_eq!(page.status, 200, "{}", page.body);
        for check in &checks {
            assert!(page.body.contains(&format!(r#"data-check="{check}""#)), "{check}: {}", page.body);
        }
    }

    // Text from the database renders as text: a VM name and an error. The
    // planted VM is "seen" in the future, so inventory refreshes keep it.
    exec(
        &app,
        "INSERT INTO vms (host, name, uuid, state, state_reason, vcpus, memory_kib, autostart, persistent, updated_at) \
         SELECT host, '<script>alert(2)</script>', uuid, state, state_reason, vcpus, memory_kib, autostart, persistent, \
         '2999-01-01T00:00:00.000000Z' FROM vms WHERE name = 'zz'",
    )
    .await;
    exec(
        &app,
        &format!("UPDATE operations SET vm = 'zz', last_error = '<img src=x onerror=alert(3)>' WHERE id = '{id}'"),
    )
    .await;
    for path in ["/ui/vms", "/ui/vms/hv1/zz", "/ui/hosts", "/ui/hosts/hv1"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"), "{path}: {}", page.body);
        assert_eq!(page.body.matches("<script").count(), 1, "{path}: only the dashboard's own script");
    }
    for path in ["/ui/vms", "/ui/hosts/hv1"] {
        assert!(browser.get(path).await.body.contains("&lt;script&gt;alert(2)&lt;/script&gt;"), "{path}");
    }
    assert!(browser.get("/ui/vms/hv1/zz").await.body.contains("&lt;img src=x onerror=alert(3)&gt;"));
    app.stop().await;
}

crate::on_both_backends!(
    the_vm_list_pages_and_filters,
    operators_act_on_a_vm_and_destroy_is_confirmed_first,
    hosts_and_health_pages_show_the_fleet_and_escape_what_they_show,
);
