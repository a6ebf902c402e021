//! The dashboard's Schedules, Alerts, Backups and Admin pages over HTTP:
//! what they show agrees with the API, their actions need the API's role
//! (controls above it are not rendered; a POST gets 403), and text from
//! users renders escaped.

use serde_json::json;

use crate::{
    helpers::{Backend, Options, TestApp},
    ui::{Browser, token},
};

/// A webhook whose path is its credential, and which wants critical alerts only.
const CHANNELS: &str = "[[alerts.channels]]\nname = \"ops\"\ntype = \"webhook\"\nmin_severity = \"critical\"\n\
                        url = \"http://127.0.0.1:9/hook/s3cr3t-path\"\n";

async fn logged_in(app: &TestApp, name: &str, role: &str) -> (Browser, String) {
    let (id, secret) = token(app, name, role).await;
    let mut browser = Browser::new(app);
    browser.login(&secret).await;
    (browser, id)
}

async fn schedules_fire_now_for_operators_and_toggle_for_admins(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options::default()).await;
    let s = json!({"name": "nightly-noop", "cron": "0 3 * * *", "kind": "noop"});
    let created = app.post("/api/v1/schedules", s).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let base = format!("/ui/schedules/{id}");

    let (viewer, _) = logged_in(&app, "watcher", "viewer").await;
    let seen = viewer.get("/ui/schedules").await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.body.contains("nightly-noop") && seen.body.contains("03:00"), "next fires shown: {}", seen.body);
    assert!(seen.body.contains("never"), "not fired yet: {}", seen.body);
    assert_eq!(seen.buttons_in_main(), 0, "a viewer sees no buttons: {}", seen.body);
    assert_eq!(viewer.post(&format!("{base}/trigger"), &[("csrf", &seen.csrf())]).await.status, 403);

    let (operator, _) = logged_in(&app, "ops-erin", "operator").await;
    let page = operator.get("/ui/schedules").await;
    assert!(page.body.contains(&format!(r#"action="{base}/trigger""#)), "{}", page.body);
    assert!(!page.body.contains(&format!(r#"action="{base}/disable""#)), "disabling is for admins: {}", page.body);
    let refused = operator.post(&format!("{base}/disable"), &[("csrf", &page.csrf())]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let fired = operator.post(&format!("{base}/trigger"), &[("csrf", &page.csrf())]).await;
    assert_eq!(fired.status, 303, "{}", fired.body);
    let op_id = fired.location().strip_prefix("/ui/operations/").unwrap().to_owned();
    app.wait_status(&op_id, &["succeeded"]).await;
    let after = operator.get("/ui/schedules").await;
    assert!(after.body.contains(&format!(r#"href="/ui/operations/{op_id}""#)), "{}", after.body);
    assert!(after.body.contains(r#"class="status succeeded""#), "the last fire's outcome: {}", after.body);

    let mut admin = Browser::new(&app);
    admin.login(&app.token).await;
    let page = admin.get("/ui/schedules").await;
    let off = admin.post(&format!("{base}/disable"), &[("csrf", &page.csrf())]).await;
    assert_eq!((off.status, off.location()), (303, "/ui/schedules"), "{}", off.body);
    assert_eq!(app.get(&format!("/api/v1/schedules/{id}")).await.body["enabled"], false);
    let page = admin.get("/ui/schedules").await;
    assert!(page.body.contains(&format!(r#"action="{base}/enable""#)), "{}", page.body);
    let on = admin.post(&format!("{base}/enable"), &[("csrf", &page.csrf())]).await;
    assert_eq!(on.status, 303, "{}", on.body);
    assert_eq!(app.get(&format!("/api/v1/schedules/{id}")).await.body["enabled"], true);
    app.stop().await;
}

async fn alerts_show_suppressed_notifications_and_operators_acknowledge_and_silence(backend: Backend) {
    let options = Options { scheduler: true, config: Some(CHANNELS.into()), ..Options::default() };
    let app = TestApp::spawn_with(backend, options).await;
    let body = json!({"severity": "info", "title": "<script>alert(1)</script>", "message": "<b>bold</b>"});
    let r = app.post("/api/v1/alerts", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let notes = format!("/api/v1/alerts/{id}/notifications");
    app.wait_for(|| async { !app.get(&notes).await.body["items"].as_array().unwrap().is_empty() }).await;
    let note = app.get(&notes).await.body["items"][0].clone();
    assert_eq!((note["status"].as_str(), note["reason"].as_str()), (Some("suppressed"), Some("below_severity")));

    let (viewer, _) = logged_in(&app, "watcher", "viewer").await;
    let list = viewer.get("/ui/alerts?status=firing").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains(&format!(r#"data-alert="{id}""#)), "{}", list.body);
    let empty = viewer.get("/ui/alerts?severity=critical").await;
    assert!(!empty.body.contains(&format!(r#"data-alert="{id}""#)), "filtered out: {}", empty.body);
    let detail = viewer.get(&format!("/ui/alerts/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(detail.body.contains("below_severity") && detail.body.contains("suppressed"), "{}", detail.body);
    for page in [&list, &detail] {
        assert!(!page.body.contains("<script>alert") && !page.body.contains("<b>bold"), "{}", page.body);
        assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", page.body);
    }
    assert_eq!(detail.buttons_in_main(), 0, "a viewer sees no buttons: {}", detail.body);
    let refused = viewer.post(&format!("/ui/alerts/{id}/ack"), &[("csrf", &detail.csrf())]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let (operator, _) = logged_in(&app, "ops-finn", "operator").await;
    let detail = operator.get(&format!("/ui/alerts/{id}")).await;
    assert_eq!(operator.post(&format!("/ui/alerts/{id}/ack"), &[]).await.status, 403, "no CSRF token");
    let acked = operator.post(&format!("/ui/alerts/{id}/ack"), &[("csrf", &detail.csrf())]).await;
    assert_eq!(acked.status, 303, "{}", acked.body);
    let alert = app.get(&format!("/api/v1/alerts/{id}")).await.body;
    assert_eq!(alert["alert"]["acknowledged_by"], "ops-finn", "{alert}");

    // Silences: operators create and expire them; viewers only see them.
    let fields = |csrf: String| {
        vec![
            ("csrf", csrf),
            ("name", "host".to_owned()),
            ("op", "=".to_owned()),
            ("value", "hv1".to_owned()),
            ("duration", "2h".to_owned()),
            ("comment", "<i>maintenance</i>".to_owned()),
        ]
    };
    let csrf = viewer.get("/ui/alerts").await.csrf();
    let form = fields(csrf);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(viewer.post("/ui/silences", &form).await.status, 403);
    assert!(app.get("/api/v1/silences").await.body["items"].as_array().unwrap().is_empty());
    let csrf = operator.get("/ui/alerts").await.csrf();
    let form = fields(csrf);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = operator.post("/ui/silences", &form).await;
    assert_eq!((made.status, made.location()), (303, "/ui/alerts"), "{}", made.body);
    let silences = app.get("/api/v1/silences").await.body;
    let silence = &silences["items"][0];
    assert_eq!(
        (silence["created_by"].as_str(), silence["comment"].as_str()),
        (Some("ops-finn"), Some("<i>maintenance</i>"))
    );
    let sid = silence["id"].as_str().unwrap().to_owned();
    let page = operator.get("/ui/alerts").await;
    assert!(page.body.contains(&format!(r#"data-silence="{sid}""#)), "{}", page.body);
    assert!(page.body.contains("&lt;i&gt;maintenance") && !page.body.contains("<i>maint"), "{}", page.body);
    let ended = operator.post(&format!("/ui/silences/{sid}/expire"), &[("csrf", &page.csrf())]).await;
    assert_eq!(ended.status, 303, "{}", ended.body);
    assert!(app.get("/api/v1/silences").await.body["items"].as_array().unwrap().is_empty(), "expired");
    app.stop().await;
}

async fn backups_page_and_back_up_now(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options::default()).await;
    app.wait_for(|| async { app.get("/api/v1/vms/web").await.status == 200 }).await;
    let (viewer, _) = logged_in(&app, "watcher", "viewer").await;
    let list = viewer.get("/ui/backups").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("No backups match."), "{}", list.body);
    let vm = viewer.get("/ui/vms/hv1/web").await;
    assert!(!vm.body.contains("/ui/backups/create"), "{}", vm.body);
    let refused = viewer.post("/ui/backups/create", &[("csrf", &vm.csrf()), ("host", "hv1"), ("vm", "web")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let (operator, _) = logged_in(&app, "ops-gail", "operator").await;
    let vm = operator.get("/ui/vms/hv1/web").await;
    assert!(vm.body.contains(r#"action="/ui/backups/create""#), "{}", vm.body);
    let made = operator.post("/ui/backups/create", &[("csrf", &vm.csrf()), ("host", "hv1"), ("vm", "web")]).await;
    assert_eq!(made.status, 303, "{}", made.body);
    let op_id = made.location().strip_prefix("/ui/operations/").unwrap().to_owned();
    let op = app.operation(&op_id).await;
    assert_eq!((op["kind"].as_str(), op["requested_by"].as_str()), (Some("backup.create"), Some("ops-gail")), "{op}");
    app.wait_status(&op_id, &["succeeded", "failed"]).await;

    // The page lists what the API lists.
    let api = app.get("/api/v1/backups").await;
    assert_eq!(api.status, 200, "{}", api.body);
    let page = operator.get("/ui/backups?host=hv1&vm=web").await;
    for b in api.body["items"].as_array().unwrap() {
        let id = b["id"].as_str().unwrap();
        assert!(page.body.contains(&format!(r#"data-backup="{id}""#)), "{id}: {}", page.body);
        let detail = operator.get(&format!("/ui/backups/{id}")).await;
        assert_eq!(detail.status, 200, "{}", detail.body);
    }
    let bad = operator.get("/ui/backups?verification=maybe").await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    app.stop().await;
}

async fn admin_page_creates_and_revokes_tokens_and_verifies_the_audit_chain(backend: Backend) {
    let options = Options { config: Some(CHANNELS.into()), ..Options::default() };
    let app = TestApp::spawn_with(backend, options).await;
    let (operator, _) = logged_in(&app, "ops-hal", "operator").await;
    let home = operator.get("/ui").await;
    assert!(!home.body.contains(r#"href="/ui/admin""#), "no Admin link below admin: {}", home.body);
    assert_eq!(operator.get("/ui/admin").await.status, 403);
    let refused = operator.post("/ui/admin/tokens", &[("csrf", &home.csrf()), ("name", "x"), ("role", "admin")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let mut admin = Browser::new(&app);
    admin.login(&app.token).await;
    let page = admin.get("/ui/admin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"href="/ui/admin""#), "{}", page.body);
    assert!(page.body.contains("ops-hal"), "tokens listed: {}", page.body);
    assert!(page.body.contains("http://127.0.0.1:9") && !page.body.contains("s3cr3t-path"), "{}", page.body);

    // Create: the secret is on the answer once, works, and is not on the page after.
    let made = admin
        .post(
            "/ui/admin/tokens",
            &[("csrf", &page.csrf()), ("name", "ci-bot"), ("role", "viewer"), ("expires_in", "1d")],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let at = made.body.find(r#"<pre class="secret">"#).unwrap_or_else(|| panic!("{}", made.body));
    let rest = &made.body[at + r#"<pre class="secret">"#.len()..];
    let secret = rest[..rest.find('<').unwrap()].to_owned();
    let mut bot = Browser::new(&app);
    bot.login(&secret).await;
    assert!(!admin.get("/ui/admin").await.body.contains(&secret), "shown once");

    // Revoke: the bot's session ends.
    let tokens = app.get("/api/v1/tokens").await;
    let bot_id = tokens.body["items"].as_array().unwrap().iter().find(|t| t["name"] == "ci-bot").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = admin.get("/ui/admin").await;
    let revoked = admin.post(&format!("/ui/admin/tokens/{bot_id}/revoke"), &[("csrf", &page.csrf())]).await;
    assert_eq!((revoked.status, revoked.location()), (303, "/ui/admin"), "{}", revoked.body);
    assert_eq!(bot.get("/ui").await.location(), "/ui/login");

    // The audit log holds both changes, and its chain verifies.
    let verified = admin.get("/ui/admin?verify=1").await;
    assert!(verified.body.contains("Chain intact"), "{}", verified.body);
    assert!(verified.body.contains("token.create") && verified.body.contains("token.revoke"), "{}", verified.body);
    app.stop().await;
}

crate::on_both_backends!(
    schedules_fire_now_for_operators_and_toggle_for_admins,
    alerts_show_suppressed_notifications_and_operators_acknowledge_and_silence,
    backups_page_and_back_up_now,
    admin_page_creates_and_revokes_tokens_and_verifies_the_audit_chain,
);
