//! Alert deliveries to real peers on loopback: a real SMTP server (aiosmtpd)
//! and real HTTP receivers, each payload checked field by field against the
//! service's documented format; peers that fail and recover, and one that never does.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    helpers::{Backend, Options, TestApp},
    receivers::{HttpReceiver, SmtpSink, free_port},
};

/// Quotes, a newline, markup and non-ASCII: each must reach every channel intact.
pub const TITLE: &str = "Disk \"nearly\" full\n<script>alert('x')</script> — café ☕";
pub const MESSAGE: &str = "Line 1 \"quoted\" & 'single'\nLine 2 <b>not bold</b> — naïve 日本語 🚀";

pub async fn spawn(backend: Backend, config: &str, env: &[(&str, &str)]) -> TestApp {
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let options = Options { scheduler: true, config: Some(config.to_owned()), env, ..Options::default() };
    TestApp::spawn_with(backend, options).await
}

pub async fn raise(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/alerts", body).await;
    assert!(r.status == 201 || r.status == 200, "{} {}", r.status, r.body);
    r.body
}

/// Waits until the alert's detail satisfies `cond`, and returns it.
pub async fn wait_detail(app: &TestApp, id: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = app.get(&format!("/api/v1/alerts/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if cond(&r.body) {
            return r.body;
        }
        assert!(std::time::Instant::now() < deadline, "alert never got there: {:#}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first notification was delivered and its delivery operation has finished.
fn delivered(d: &Value) -> bool {
    let n = &d["notifications"][0];
    n["status"] == "delivered" && n["delivery"]["operation"]["status"] == "succeeded"
}

fn slack_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn verify_signature(secret: &str, r: &crate::receivers::Received) {
    let ts = &r.headers["x-hyperfleet-timestamp"];
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp {ts} is not now");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.headers["x-hyperfleet-signature"], expected);
}

fn email_channel(port: u16) -> String {
    format!(
        r#"
[[alerts.channels]]
name = "ops-mail"
type = "email"
min_severity = "warning"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "none"
from = "hyperfleet@example.org"
to = ["ops@example.org", "oncall@example.org"]
timeout_s = 3
"#
    )
}

async fn email_reaches_a_real_smtp_server(backend: Backend) {
    let port = free_port();
    let smtp = SmtpSink::start(port);
    let app = spawn(backend, &email_channel(port), &[]).await;
    let body = json!({"severity": "critical", "title": TITLE, "message": MESSAGE, "host": "hv1",
                      "labels": {"rack": "r1", "team": "storage"}});
    let alert = raise(&app, body).await;
    let id = alert["id"].as_str().unwrap();
    let mail = smtp.wait_for(1).await;
    let m = &mail[0];
    assert_eq!(m["mail_from"], "hyperfleet@example.org");
    assert_eq!(m["rcpt_tos"], json!(["ops@example.org", "oncall@example.org"]));
    assert_eq!(m["to"], "ops@example.org, oncall@example.org");
    assert_eq!(m["subject"], format!("[Hyperfleet] CRITICAL: {}", TITLE.replace('\n', " ")));
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["charset"], "utf-8");
    let text = m["body"].as_str().unwrap().replace("\r\n", "\n");
    assert!(text.contains(TITLE), "the title, intact: {text:?}");
    assert!(text.contains(MESSAGE), "the message, intact: {text}");
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(str::trim).unwrap_or_default().to_owned()
    };
    assert_eq!(field("Host"), "hv1", "{text}");
    assert_eq!(field("Severity"), "critical");
    assert_eq!(field("Labels"), "rack=r1, team=storage");
    assert!(chrono::DateTime::parse_from_rfc3339(&field("Time")).is_ok(), "{text}");
    assert!(text.contains(&format!("{}/api/v1/alerts/{id}", app.address)), "the link: {text}");
    let notification = &m["message_id"];
    // Recorded: delivered, with the server's answer, in one attempt.
    let d = wait_detail(&app, id, delivered).await;
    let n = &d["notifications"][0];
    assert_eq!(n["channel"], "ops-mail");
    assert_eq!(n["event"], "firing");
    assert_eq!(*notification, format!("<{}@hyperfleet>", n["id"].as_str().unwrap()));
    assert!(n["detail"].as_str().unwrap().starts_with("SMTP 250"), "{n:#}");
    assert_eq!(n["delivery"]["operation"]["kind"], "alert.deliver");
    assert_eq!(n["delivery"]["operation"]["status"], "succeeded");
    assert_eq!(n["delivery"]["attempts"].as_array().unwrap().len(), 1);
    // Email does not get resolves unless asked (send_resolved defaults to off for email).
    let r = app.post(&format!("/api/v1/alerts/{id}/resolve"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = wait_detail(&app, id, |d| d["events"].as_array().unwrap().len() == 2).await;
    assert_eq!(d["events"][1]["kind"], "resolved");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1);
}

async fn smtp_down_then_up_is_delivered_after_retries(backend: Backend) {
    let port = free_port();
    let app = spawn(backend, &email_channel(port), &[]).await;
    let alert = raise(&app, json!({"severity": "warning", "title": "SMTP outage", "message": "m"})).await;
    let id = alert["id"].as_str().unwrap();
    // Nothing listens: attempts fail and are retried with backoff.
    let d = wait_detail(&app, id, |d| {
        d["notifications"][0]["delivery"]["attempts"]
            .as_array()
            .is_some_and(|a| a.iter().filter(|x| x["outcome"] == "failed").count() >= 2)
    })
    .await;
    assert_eq!(d["notifications"][0]["status"], "pending");
    let smtp = SmtpSink::start(port);
    let d = wait_detail(&app, id, delivered).await;
    let attempts = d["notifications"][0]["delivery"]["attempts"].as_array().unwrap().clone();
    let (last, failed) = attempts.split_last().unwrap();
    assert_eq!(last["outcome"], "succeeded", "{attempts:#?}");
    assert!(failed.len() >= 2);
    for a in failed {
        assert_eq!(a["outcome"], "failed");
        assert_eq!(a["error_class"], "transient");
        assert_eq!(a["error_code"], "smtp_unavailable", "{a:#}");
        assert!(a["message"].as_str().unwrap().contains("ops-mail"), "{a:#}");
    }
    assert_eq!(d["notifications"][0]["delivery"]["operation"]["status"], "succeeded");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "sent once");
    assert_eq!(smtp.messages()[0]["subject"], "[Hyperfleet] WARNING: SMTP outage");
}

/// SMTP AUTH, with the password read from a file.
async fn smtp_auth_uses_the_password_from_a_file(backend: Backend) {
    let port = free_port();
    let smtp = SmtpSink::start_with(port, Some("hyperfleet:s3cret pass"));
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, "s3cret pass\n").unwrap();
    let config = format!(
        "[[alerts.channels]]\nname = \"auth\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
         smtp_security = \"none\"\nallow_plaintext_auth = true\nfrom = \"hf@example.org\"\nto = [\"ops@example.org\"]\n\
         username = \"hyperfleet\"\n\
         password = {{ file = {:?} }}\n",
        password.display().to_string()
    );
    let app = spawn(backend, &config, &[]).await;
    let alert = raise(&app, json!({"severity": "critical", "title": "auth", "message": "m"})).await;
    let mail = smtp.wait_for(1).await;
    assert_eq!(mail[0]["login"], "hyperfleet");
    let d = wait_detail(&app, alert["id"].as_str().unwrap(), delivered).await;
    assert!(!d.to_string().contains("s3cret"), "the password never shows");
    let channels = app.get("/api/v1/channels").await.body.to_string();
    assert!(!channels.contains("s3cret") && channels.contains("smtp-password"), "{channels}");
}

fn hook_channels(r: &HttpReceiver) -> String {
    format!(
        r#"
[[alerts.channels]]
name = "slack"
type = "slack"
url = "{}"

[[alerts.channels]]
name = "discord"
type = "discord"
url = "{}"

[[alerts.channels]]
name = "teams"
type = "teams"
url = "{}"

[[alerts.channels]]
name = "hooks"
type = "webhook"
min_severity = "info"
url = "{}"
secret = "s3cret"
"#,
        r.url("/slack"),
        r.url("/discord"),
        r.url("/teams"),
        r.url("/hook")
    )
}

async fn webhook_payloads_follow_each_services_format(backend: Backend) {
    let r = HttpReceiver::start(&[], 200).await;
    let app = spawn(backend, &hook_channels(&r), &[]).await;
    let alert = raise(
        &app,
        json!({"severity": "critical", "title": TITLE, "message": MESSAGE, "host": "hv1",
                                   "labels": {"rack": "r1"}}),
    )
    .await;
    let id = alert["id"].as_str().unwrap();
    let link = format!("{}/api/v1/alerts/{id}", app.address);

    // Slack: an incoming-webhook message with one attachment coloured by severity.
    let slack = &r.wait_for("/slack", 1).await[0];
    assert_eq!(slack.headers["content-type"], "application/json");
    let a = &slack.json["attachments"][0];
    assert_eq!(slack_unescape(slack.json["text"].as_str().unwrap()), format!("[CRITICAL] {TITLE}"));
    assert_eq!(a["color"], "#D32F2F");
    assert_eq!(slack_unescape(a["title"].as_str().unwrap()), TITLE);
    assert!(!a["title"].as_str().unwrap().contains('<'), "Slack needs <, > and & escaped");
    assert_eq!(slack_unescape(a["text"].as_str().unwrap()), MESSAGE);
    assert_eq!(a["title_link"], link);
    assert_eq!(a["footer"], "Hyperfleet");
    assert!(a["ts"].as_i64().unwrap() > 1_700_000_000);
    let fields = a["fields"].as_array().unwrap();
    assert!(fields.contains(&json!({"title": "Host", "value": "hv1", "short": true})), "{fields:?}");
    assert!(fields.contains(&json!({"title": "Labels", "value": "rack=r1", "short": false})), "{fields:?}");

    // Discord: one embed, coloured, within Discord's limits, mentions off.
    let discord = &r.wait_for("/discord", 1).await[0];
    let e = &discord.json["embeds"][0];
    assert_eq!(e["title"], format!("[CRITICAL] {TITLE}"));
    assert!(e["title"].as_str().unwrap().chars().count() <= 256);
    assert_eq!(e["description"], MESSAGE);
    assert_eq!(e["color"], 0xD32F2F);
    assert_eq!(e["url"], link);
    assert!(chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).is_ok());
    assert!(
        e["fields"].as_array().unwrap().contains(&json!({"name": "Severity", "value": "critical", "inline": true}))
    );
    assert_eq!(discord.json["allowed_mentions"], json!({"parse": []}));

    // Teams (Workflows): a message carrying one Adaptive Card.
    let teams = &r.wait_for("/teams", 1).await[0];
    assert_eq!(teams.json["type"], "message");
    let att = &teams.json["attachments"][0];
    assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_eq!(card["body"][0]["text"], format!("[CRITICAL] {TITLE}"));
    assert_eq!(card["body"][0]["color"], "Attention");
    assert_eq!(card["body"][1]["text"], MESSAGE);
    assert_eq!(card["body"][2]["type"], "FactSet");
    assert!(card["body"][2]["facts"].as_array().unwrap().contains(&json!({"title": "Host", "value": "hv1"})));
    assert_eq!(card["actions"][0], json!({"type": "Action.OpenUrl", "title": "View alert", "url": link}));

    // Generic: the whole alert, the event, a valid signature.
    let hook = &r.wait_for("/hook", 1).await[0];
    verify_signature("s3cret", hook);
    assert_eq!(hook.json["event"], "firing");
    assert_eq!(hook.headers["x-hyperfleet-event"], "firing");
    assert_eq!(hook.json["alert"]["id"], id);
    assert_eq!(hook.json["alert"]["title"], TITLE);
    assert_eq!(hook.json["alert"]["message"], MESSAGE);
    assert_eq!(hook.json["alert"]["severity"], "critical");
    assert_eq!(hook.json["alert"]["source"], "manual");
    assert_eq!(hook.json["alert"]["labels"], json!({"rack": "r1"}));
    assert_eq!(hook.json["link"], link);
    assert_eq!(hook.headers["x-hyperfleet-delivery"], hook.json["notification_id"].as_str().unwrap());

    // Resolve: webhook-type channels are told by default, in each format.
    let res = app.post(&format!("/api/v1/alerts/{id}/resolve"), json!({})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let hook = &r.wait_for("/hook", 2).await[1];
    verify_signature("s3cret", hook);
    assert_eq!(hook.json["event"], "resolved");
    assert_eq!(hook.json["alert"]["status"], "resolved");
    assert_eq!(r.wait_for("/slack", 2).await[1].json["attachments"][0]["color"], "#2E7D32");
    assert_eq!(r.wait_for("/discord", 2).await[1].json["embeds"][0]["color"], 0x2E7D32);
    assert_eq!(r.wait_for("/teams", 2).await[1].json["attachments"][0]["content"]["body"][0]["color"], "Good");

    // A test notification through one channel, and through all.
    let t = app.post("/api/v1/alerts/test", json!({"channel": "hooks"})).await;
    assert_eq!(t.status, 202, "{}", t.body);
    let hook = &r.wait_for("/hook", 3).await[2];
    verify_signature("s3cret", hook);
    assert_eq!(hook.json["event"], "test");
    let t = app.post("/api/v1/alerts/test", json!({})).await;
    assert_eq!(t.body["items"].as_array().unwrap().len(), 4, "{}", t.body);
    for path in ["/slack", "/discord", "/teams"] {
        r.wait_for(path, 3).await;
    }
    r.wait_for("/hook", 4).await;
    // The channels list: secrets never shown, last delivery status.
    let c = app.get("/api/v1/channels").await;
    assert_eq!(c.status, 200);
    let text = c.body.to_string();
    assert!(!text.contains("s3cret") && !text.contains("/slack"), "{text}");
    let hooks = c.body["items"].as_array().unwrap().iter().find(|c| c["name"] == "hooks").unwrap().clone();
    assert_eq!(hooks["type"], "webhook");
    assert_eq!(hooks["target"], format!("{}/***", r.base));
    assert_eq!(hooks["config"]["secret"], "***");
    app.wait_for(|| async {
        let c = app.get("/api/v1/channels").await;
        c.body["items"].as_array().unwrap().iter().all(|c| {
            let sent = if c["name"] == "hooks" { 4 } else { 3 };
            c["delivered"] == sent && c["last_status"] == "delivered"
        })
    })
    .await;
}

async fn a_webhook_answering_500_then_200_is_delivered_once(backend: Backend) {
    let r = HttpReceiver::start(&[500], 200).await;
    let config = format!(
        "[[alerts.channels]]\nname = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"k\"\n",
        r.url("/hook")
    );
    let app = spawn(backend, &config, &[]).await;
    let alert = raise(&app, json!({"severity": "warning", "title": "flaky receiver", "message": "m"})).await;
    let id = alert["id"].as_str().unwrap();
    let d = wait_detail(&app, id, delivered).await;
    let attempts = d["notifications"][0]["delivery"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0]["error_code"], "http_500");
    assert!(attempts[0]["message"].as_str().unwrap().contains("answer 500"), "{:#}", attempts[0]);
    assert_eq!(attempts[1]["outcome"], "succeeded");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = r.on("/hook");
    assert_eq!(got.len(), 2, "one failed try and one delivery, nothing after");
    assert_eq!(got[0].headers["x-hyperfleet-delivery"], got[1].headers["x-hyperfleet-delivery"]);
    assert_eq!(d["notifications"].as_array().unwrap().len(), 1);
}

async fn a_channel_that_never_recovers_fails_and_alerts_elsewhere(backend: Backend) {
    let broken = HttpReceiver::start(&[], 503).await;
    let backup = HttpReceiver::start(&[], 200).await;
    let config = format!(
        "[[alerts.channels]]\nname = \"broken\"\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [[alerts.channels]]\nname = \"backup\"\ntype = \"slack\"\nurl = \"{}\"\n",
        broken.url("/hook"),
        backup.url("/slack")
    );
    let app = spawn(backend, &config, &[("HYPERFLEET__ALERTS__DELIVERY_MAX_ATTEMPTS", "3")]).await;
    let alert = raise(&app, json!({"severity": "warning", "title": "Original", "message": "m"})).await;
    let id = alert["id"].as_str().unwrap();
    let d = wait_detail(&app, id, |d| {
        d["notifications"].as_array().unwrap().iter().any(|n| n["channel"] == "broken" && n["status"] == "failed")
    })
    .await;
    let n = d["notifications"].as_array().unwrap().iter().find(|n| n["channel"] == "broken").unwrap().clone();
    assert_eq!(n["delivery"]["operation"]["status"], "failed");
    assert_eq!(n["delivery"]["attempts"].as_array().unwrap().len(), 3);
    assert!(n["detail"].as_str().unwrap().contains("HTTP 503"), "{n:#}");
    // The fallback: a critical `delivery failed` alert, sent to the other channel only.
    let got = backup.wait_for("/slack", 2).await;
    assert_eq!(slack_unescape(got[0].json["attachments"][0]["title"].as_str().unwrap()), "Original");
    let fallback = slack_unescape(got[1].json["attachments"][0]["title"].as_str().unwrap());
    assert_eq!(fallback, "Alert delivery failed on channel broken");
    let list = app.get("/api/v1/alerts?source=fleet").await;
    let f = &list.body["items"][0];
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["labels"]["channel"], "broken");
    let fd = wait_detail(&app, f["id"].as_str().unwrap(), delivered).await;
    let channels: Vec<&str> =
        fd["notifications"].as_array().unwrap().iter().map(|n| n["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["backup"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(broken.on("/hook").len(), 3, "three attempts at the original, nothing else");
    assert!(broken.all().iter().all(|r| r.json["alert"]["title"] == "Original"));
}

crate::on_both_backends!(
    email_reaches_a_real_smtp_server,
    smtp_auth_uses_the_password_from_a_file,
    smtp_down_then_up_is_delivered_after_retries,
    webhook_payloads_follow_each_services_format,
    a_webhook_answering_500_then_200_is_delivered_once,
    a_channel_that_never_recovers_fails_and_alerts_elsewhere,
);
