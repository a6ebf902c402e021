//! The dashboard's operations page lists exactly what `/api/v1/operations`
//! lists for the same filters — status, kind, host, VM, error class,
//! requester, text in the error, time range — page by page, and refuses what
//! the API refuses.

use crate::{
    helpers::{Backend, TestApp},
    ui::{Browser, no_retries},
};

async fn operations_page_lists_what_the_api_lists_with_the_same_filters(backend: Backend) {
    let app = TestApp::spawn_with(backend, no_retries()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = app.noop(0, if i % 2 == 0 { 0 } else { 5 }).await;
        app.wait_status(&id, &["succeeded", "failed"]).await;
        ids.push(id);
    }
    let mut browser = Browser::new(&app);
    browser.login(&app.token).await;
    let api_ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    };
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let range = format!("since={}&until={}", enc(&hour_ago), enc(&later));
    let before = format!("until={}", enc(&hour_ago));
    for filter in [
        "",
        "status=failed",
        "status=succeeded&kind=noop",
        "host=hv1",
        "vm=nowhere",
        "limit=2",
        "error_class=transient",
        "error_class=timeout",
        "error_text=ON%20PURPOSE",
        "error_text=50%25",
        "requested_by=admin",
        "requested_by=schedule%3Anightly",
        &range,
        &before,
    ] {
        let api = app.get(&format!("/api/v1/operations?{filter}")).await;
        assert_eq!(api.status, 200, "{filter}: {}", api.body);
        let page = browser.get(&format!("/ui/operations?{filter}")).await;
        assert_eq!(page.status, 200, "{filter}: {}", page.body);
        assert_eq!(page.operation_ids(), api_ids(&api.body), "{filter}");
    }
    assert_eq!(browser.get("/ui/operations?status=failed").await.operation_ids().len(), 2);
    assert_eq!(browser.get("/ui/operations?error_text=on+purpose").await.operation_ids().len(), 2);
    assert_eq!(browser.get(&format!("/ui/operations?{range}&requested_by=admin")).await.operation_ids().len(), 5);
    // A browser's datetime-local field (UTC, to the minute) reads like RFC 3339.
    let minute = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M");
    assert_eq!(browser.get(&format!("/ui/operations?since={minute}")).await.operation_ids().len(), 5);
    for (bad, says) in [
        ("error_class=fatal", "`fatal` is not an error class"),
        ("requested_by=a%20b", "`requested_by` is 1-80 of"),
        ("since=yesterday", "`since` must be an RFC 3339 time"),
    ] {
        let page = browser.get(&format!("/ui/operations?{bad}")).await;
        assert!(page.status == 422 || page.status == 400, "{bad}: {}", page.status);
        assert!(page.body.contains(says), "{bad}: {}", page.body);
        assert!(app.get(&format!("/api/v1/operations?{bad}")).await.status / 100 == 4, "{bad}");
    }

    // Cursor paging walks the same pages, newest first.
    let (mut ui_all, mut path) = (Vec::new(), "/ui/operations?limit=2".to_owned());
    loop {
        let page = browser.get(&path).await;
        ui_all.extend(page.operation_ids());
        let Some(at) = page.body.find(r#"rel="next" href=""#) else { break };
        let rest = &page.body[at + r#"rel="next" href=""#.len()..];
        path = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
    }
    ids.reverse();
    assert_eq!(ui_all, ids);
    let bad = browser.get("/ui/operations?status=bogus").await;
    assert!(bad.status == 422 && bad.body.contains("bogus"), "{}: {}", bad.status, bad.body);
    app.stop().await;
}

/// A query-string value, percent-encoded.
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

crate::on_both_backends!(operations_page_lists_what_the_api_lists_with_the_same_filters);
