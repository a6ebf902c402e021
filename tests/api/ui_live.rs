//! The dashboard's live side over HTTP: the change feed's server-sent
//! events (delivery after a change, resuming with `Last-Event-ID`), the
//! fragments live pages fetch, and the operators' bulk actions.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    helpers::{Backend, Options, TestApp},
    ui::{Browser, token},
};

/// The session cookie of a login with `token`.
async fn login_cookie(app: &TestApp, token: &str) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = client
        .post(format!("{}/ui/login", app.address))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    kind: String,
    id: String,
    data: Value,
}

impl Sse {
    fn seq(&self) -> u64 {
        self.id.rsplit_once('-').unwrap().1.parse().unwrap()
    }
}

/// An open `/ui/events` stream.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(app: &TestApp, cookie: &str, last_event_id: Option<&str>) -> Self {
        let mut req = reqwest::Client::new().get(format!("{}/ui/events", app.address)).header("cookie", cookie);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self { resp, buf: String::new() }
    }

    /// The next event (keep-alive comments skipped), waiting at most 30 s.
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let field =
                    |name: &str| block.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().to_owned()));
                let Some(data) = field("data:") else { continue };
                return Sse {
                    kind: field("event:").unwrap_or_else(|| "message".into()),
                    id: field("id:").unwrap_or_default(),
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("no event within 30 s")
                .unwrap()
                .expect("the stream ended");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event about operation `id` (others are skipped).
    async fn next_about(&mut self, id: &str) -> Sse {
        loop {
            let e = self.next().await;
            if e.kind == "op" && e.data["id"] == id {
                return e;
            }
        }
    }
}

async fn events_arrive_within_a_second_and_resume_after_the_last_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = login_cookie(&app, &app.token).await;
    let anonymous = reqwest::get(format!("{}/ui/events", app.address)).await.unwrap();
    assert_eq!(anonymous.status(), 401, "no session, no stream (and no redirect an EventSource would follow)");

    let mut events = Events::open(&app, &cookie, None).await;
    let started = Instant::now();
    let first = app.noop(0, 0).await;
    let seen = events.next_about(&first).await;
    let delivery = started.elapsed();
    println!("SSE: a submitted operation's change reached an open stream in {} ms", delivery.as_millis());
    assert!(delivery < Duration::from_secs(5), "delivery took {delivery:?}");
    assert_eq!(seen.kind, "op");

    // A second change, then a tab that last saw the first event gets what it missed.
    let second = app.noop(0, 0).await;
    let missed = events.next_about(&second).await;
    let mut resumed = Events::open(&app, &cookie, Some(&seen.id)).await;
    let replayed = resumed.next().await;
    assert!(replayed.seq() > seen.seq(), "{replayed:?} after {seen:?}");
    let mut replay = vec![replayed];
    while replay.last().unwrap().id != missed.id {
        replay.push(resumed.next().await);
    }
    assert!(replay.iter().any(|e| e.data["id"] == second.as_str()), "{replay:?}");

    // An id this feed never gave (another process, a restart): start over.
    let mut stale = Events::open(&app, &cookie, Some("0-1")).await;
    let reset = stale.next().await;
    assert_eq!(reset.kind, "reset", "{reset:?}");
    // Then the stream goes on live.
    let third = app.noop(0, 0).await;
    stale.next_about(&third).await;

    // A stream ends with its session: revoking the token closes it.
    let (token_id, secret) = token(&app, "watcher", "viewer").await;
    let mut watching = Events::open(&app, &login_cookie(&app, &secret).await, None).await;
    let revoked = app.request("DELETE", &format!("/api/v1/tokens/{token_id}"), None, &[]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while watching.resp.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the revoked token's stream stayed open");

    // Streams still open end when the server stops (figure: how long the stop took).
    let stopping = Instant::now();
    app.stop().await;
    println!("SSE: the server stopped with open streams in {} ms", stopping.elapsed().as_millis());
    let closed =
        tokio::time::timeout(Duration::from_secs(5), async { while let Ok(Some(_)) = events.resp.chunk().await {} });
    assert!(closed.await.is_ok(), "a stream outlived the server");
}

async fn events_follow_what_a_worker_in_another_process_commits(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let cookie = login_cookie(&app, &app.token).await;
    let mut events = Events::open(&app, &cookie, None).await;
    app.spawn_worker_process();
    let id = app.noop(0, 0).await;
    let started = Instant::now();
    loop {
        let e = events.next_about(&id).await;
        if e.data["status"] == "succeeded" {
            break;
        }
    }
    println!(
        "SSE: an operation run by another process was seen succeeded {} ms after submit",
        started.elapsed().as_millis()
    );
    let op = app.operation(&id).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    app.stop().await;
}

async fn fragments_render_the_rows_and_the_body_the_pages_show(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let (a, b) = (app.noop(0, 0).await, app.noop(0, 0).await);
    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    let list = browser.get("/ui/operations").await;
    assert_eq!(list.operation_ids(), [b.clone(), a.clone()]);
    assert!(list.body.contains(r#"data-live="list""#), "{}", list.body);

    let rows = browser.get(&format!("/ui/operations/rows?ids={a},{b}")).await;
    assert_eq!(rows.status, 200);
    assert_eq!(rows.operation_ids(), [b.clone(), a.clone()]);
    // The same function renders the row for the page and for the fragment.
    let row_of = |body: &str, id: &str| {
        let at = body.find(&format!(r#"<tr data-id="{id}""#)).unwrap();
        body[at..at + body[at..].find("</tr>").unwrap()].to_owned()
    };
    assert_eq!(row_of(&rows.body, &a), row_of(&list.body, &a));

    app.post(&format!("/api/v1/operations/{a}/cancel"), serde_json::json!({})).await;
    let cancelled = browser.get(&format!("/ui/operations/rows?ids={a},{b}&status=cancelled")).await;
    assert_eq!(cancelled.operation_ids(), std::slice::from_ref(&a), "only rows matching the list's filter");
    let body = browser.get(&format!("/ui/operations/{a}/fragment")).await;
    assert!(body.status == 200 && body.body.contains("cancelled") && !body.body.contains("<html"), "{}", body.body);
    let overview = browser.get("/ui/fragments/overview").await;
    assert!(overview.status == 200 && overview.body.contains(r#"id="queued""#), "{}", overview.body);
    let bad = browser.get("/ui/operations/rows?ids=nope").await;
    assert!((400..500).contains(&bad.status), "{}", bad.body);
    app.stop().await;
}

async fn operators_cancel_and_retry_in_bulk_after_a_confirmation(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options { worker: false, ..Options::default() }).await;
    let (a, b, c) = (app.noop(0, 0).await, app.noop(0, 0).await, app.noop(0, 0).await);
    let (_, operator) = token(&app, "ops-bob", "operator").await;
    let (_, viewer) = token(&app, "watcher", "viewer").await;

    let mut watcher = Browser::new(&app);
    watcher.login(&viewer).await;
    let list = watcher.get("/ui/operations").await;
    assert!(!list.body.contains("/ui/operations/bulk") && !list.body.contains(r#"name="id""#), "{}", list.body);
    let refused =
        watcher.post("/ui/operations/bulk", &[("csrf", &list.csrf()), ("action", "cancel"), ("id", &a)]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let mut bob = Browser::new(&app);
    bob.login(&operator).await;
    let list = bob.get("/ui/operations").await;
    assert!(list.body.contains(r#"action="/ui/operations/bulk""#), "{}", list.body);
    let csrf = list.csrf();
    let ask = [("csrf", csrf.as_str()), ("action", "cancel"), ("id", a.as_str()), ("id", b.as_str())];
    assert_eq!(bob.post("/ui/operations/bulk", &ask[1..]).await.status, 403, "no CSRF token");
    let forged = [("csrf", "forged"), ("action", "cancel"), ("id", a.as_str())];
    assert_eq!(bob.post("/ui/operations/bulk", &forged).await.status, 403, "a wrong CSRF token");
    let cross = bob.post_with("/ui/operations/bulk", &ask, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(cross.status, 403, "a cross-site POST");

    let confirm = bob.post("/ui/operations/bulk", &ask).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains(r#"<strong id="bulk-count">2</strong> operations?"#), "{}", confirm.body);
    assert_eq!(app.operation(&a).await["status"], "queued", "nothing happens before the confirmation");
    let mut confirmed = ask.to_vec();
    confirmed.push(("confirmed", "yes"));
    let done = bob.post("/ui/operations/bulk", &confirmed).await;
    assert!(done.body.contains(r#"<strong id="bulk-done">2</strong> cancelled"#), "{}", done.body);
    for id in [&a, &b] {
        let op = app.operation(id).await;
        assert_eq!((op["status"].as_str(), op["cancelled_by"].as_str()), (Some("cancelled"), Some("ops-bob")));
    }
    assert_eq!(app.operation(&c).await["status"], "queued");

    // All matching the filter: the queued one only; the cap is on the page.
    assert!(list.body.contains("all matching the filter (at most 200)"), "{}", list.body);
    let all = [("csrf", csrf.as_str()), ("action", "retry"), ("all", "1"), ("status", "cancelled")];
    let confirm = bob.post("/ui/operations/bulk", &all).await;
    assert!(confirm.body.contains(r#"<strong id="bulk-count">2</strong> operations?"#), "{}", confirm.body);
    let mut retry: Vec<(&str, &str)> = vec![("csrf", &csrf), ("action", "retry"), ("confirmed", "yes")];
    retry.extend([("id", a.as_str()), ("id", b.as_str()), ("id", c.as_str())]);
    let done = bob.post("/ui/operations/bulk", &retry).await;
    assert!(done.body.contains(r#"<strong id="bulk-done">2</strong> retried"#), "{}", done.body);
    assert!(done.body.contains("1 not retried"), "the queued one cannot be retried: {}", done.body);
    let retries: Vec<Value> = app.all_operations().await.into_iter().filter(|op| op["retry_of"].is_string()).collect();
    assert_eq!(retries.len(), 2);
    assert!(retries.iter().all(|op| op["requested_by"] == "ops-bob"), "{retries:?}");

    let too_many: Vec<String> = (0..201).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let mut big: Vec<(&str, &str)> = vec![("csrf", &csrf), ("action", "cancel")];
    big.extend(too_many.iter().map(|id| ("id", id.as_str())));
    let refused = bob.post("/ui/operations/bulk", &big).await;
    assert!(refused.status == 400 && refused.body.contains("at most 200"), "{}", refused.body);
    let nothing = bob.post("/ui/operations/bulk", &[("csrf", &csrf), ("action", "cancel")]).await;
    assert_eq!(nothing.status, 400, "{}", nothing.body);
    app.stop().await;
}

async fn the_detail_page_shows_the_retry_chain_the_alerts_and_curl(backend: Backend) {
    let app = TestApp::spawn_with(backend, crate::ui::no_retries()).await;
    let failed = crate::ui::failed_operation(&app).await;
    let retry = app.post(&format!("/api/v1/operations/{failed}/retry"), serde_json::json!({})).await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    let retried = retry.body["id"].as_str().unwrap().to_owned();
    let alerts = app.get("/api/v1/alerts").await;
    let title = alerts.body["items"][0]["title"].as_str().expect("the failure raised an alert").to_owned();

    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    let page = browser.get(&format!("/ui/operations/{failed}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("Retry chain") && body.contains(&format!(r#"href="/ui/operations/{retried}""#)), "{body}");
    assert!(body.contains("Alerts") && body.contains(&title), "{body}");
    let read =
        format!(r#"curl -H "Authorization: Bearer $HYPERFLEET_TOKEN" '{}/api/v1/operations/{failed}'"#, app.address);
    assert!(body.contains(&read.replace('"', "&quot;")) || body.contains(&read), "{body}");
    assert!(body.contains(r#"id="curl-retry""#), "{body}");
    let newer = browser.get(&format!("/ui/operations/{retried}")).await;
    assert!(newer.body.contains(&format!(r#"href="/ui/operations/{failed}""#)), "{}", newer.body);

    let (_, viewer) = token(&app, "watcher", "viewer").await;
    let mut watcher = Browser::new(&app);
    watcher.login(&viewer).await;
    let page = watcher.get(&format!("/ui/operations/{failed}")).await;
    assert!(page.body.contains(r#"id="curl-read""#) && !page.body.contains(r#"id="curl-retry""#), "{}", page.body);
    app.stop().await;
}

crate::on_both_backends!(
    events_follow_what_a_worker_in_another_process_commits,
    the_detail_page_shows_the_retry_chain_the_alerts_and_curl,
    events_arrive_within_a_second_and_resume_after_the_last_id,
    fragments_render_the_rows_and_the_body_the_pages_show,
    operators_cancel_and_retry_in_bulk_after_a_confirmation,
);
