//! What each channel receives, built as typed values and serialized by serde
//! (never by string concatenation), each in its service's documented shape:
//!
//! - Slack incoming webhook: `text` plus one legacy attachment coloured by
//!   severity; `&`, `<` and `>` escaped as Slack requires of message text.
//! - Discord webhook: one embed coloured by severity (title ≤ 256, description
//!   ≤ 4096, field values ≤ 1024 characters), mentions disabled.
//! - Teams (Workflows webhook): a message with one Adaptive Card 1.4.
//! - Generic webhook: the whole alert and an `event` field, HMAC-signed by the sender.
//! - Email: a subject `[Hyperfleet] <SEVERITY>: <title>` and a text body.

use serde::Serialize;
use serde_json::{Value, json};

use hyperfleet_core::{
    NotificationId, Timestamp,
    alert::{Alert, NotifyEvent, Severity},
};

/// One notification, ready to render for any channel.
#[derive(Debug, Clone)]
pub struct Message {
    pub event: NotifyEvent,
    pub alert: Alert,
    pub link: String,
    pub notification_id: NotificationId,
    pub sent_at: Timestamp,
}

impl Message {
    /// `CRITICAL`, or `RESOLVED` once resolved.
    fn headline(&self) -> String {
        match self.event {
            NotifyEvent::Resolved => "RESOLVED".into(),
            _ => self.alert.severity.as_str().to_uppercase(),
        }
    }

    fn labels_line(&self) -> String {
        self.alert.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }

    fn host(&self) -> &str {
        self.alert.host.as_deref().unwrap_or("-")
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("Host", self.host().to_owned()),
            ("Severity", self.alert.severity.as_str().to_owned()),
            ("Source", self.alert.source.as_str().to_owned()),
            ("Status", self.event_status().to_owned()),
            ("First seen", self.alert.first_seen.to_string()),
            ("Occurrences", self.alert.occurrences.to_string()),
        ];
        if !self.alert.labels.is_empty() {
            facts.push(("Labels", self.labels_line()));
        }
        facts
    }

    fn event_status(&self) -> &'static str {
        match self.event {
            NotifyEvent::Firing => "firing",
            NotifyEvent::Resolved => "resolved",
            NotifyEvent::Test => "test",
        }
    }

    fn colour(&self) -> u32 {
        match (self.event, self.alert.severity) {
            (NotifyEvent::Resolved, _) => 0x2E7D32,
            (_, Severity::Critical) => 0xD32F2F,
            (_, Severity::Warning) => 0xF9A825,
            (_, Severity::Info) => 0x1E88E5,
        }
    }
}

/// Cuts `text` to at most `max` characters (not bytes), marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Slack's control characters in message text.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn email_subject(m: &Message) -> String {
    let title: String = m.alert.title.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("[Hyperfleet] {}: {}", m.headline(), truncate(&title, 200))
}

pub fn email_body(m: &Message) -> String {
    let mut body = format!("{} — {}\n\n{}\n\n", m.headline(), m.alert.title, m.alert.message);
    for (name, value) in m.facts() {
        body.push_str(&format!("{:<12} {value}\n", format!("{name}:")));
    }
    body.push_str(&format!("{:<12} {}\n", "Time:", m.sent_at));
    body.push_str(&format!("\nDetails: {}\n", m.link));
    body
}

#[derive(Serialize)]
struct SlackField {
    title: &'static str,
    value: String,
    short: bool,
}

pub fn slack(m: &Message) -> Value {
    let title = slack_escape(&m.alert.title);
    let fields: Vec<SlackField> = m
        .facts()
        .into_iter()
        .map(|(name, value)| SlackField { title: name, short: name != "Labels", value: slack_escape(&value) })
        .collect();
    json!({
        "text": format!("[{}] {title}", m.headline()),
        "attachments": [{
            "fallback": format!("[{}] {title}", m.headline()),
            "color": format!("#{:06X}", m.colour()),
            "title": title,
            "title_link": m.link,
            "text": slack_escape(&m.alert.message),
            "fields": fields,
            "footer": "Hyperfleet",
            "ts": m.sent_at.0.timestamp(),
        }],
    })
}

#[derive(Serialize)]
struct DiscordField {
    name: &'static str,
    value: String,
    inline: bool,
}

/// Discord's limits: title 256, description 4096, field value 1024, and 6000
/// characters over the whole embed.
const DISCORD_EMBED_TOTAL: usize = 6000;

pub fn discord(m: &Message) -> Value {
    let fields: Vec<DiscordField> = m
        .facts()
        .into_iter()
        .map(|(name, value)| DiscordField { name, inline: name != "Labels", value: truncate(&value, 1024) })
        .collect();
    let title = truncate(&format!("[{}] {}", m.headline(), m.alert.title), 256);
    const FOOTER: &str = "Hyperfleet";
    let used = title.chars().count()
        + FOOTER.len()
        + fields.iter().map(|f| f.name.len() + f.value.chars().count()).sum::<usize>();
    let mut embed = json!({
        "title": title,
        "url": m.link,
        "color": m.colour(),
        "fields": fields,
        "timestamp": m.sent_at.0.to_rfc3339(),
        "footer": { "text": FOOTER },
    });
    // Discord rejects an empty description; leave it out instead.
    if !m.alert.message.is_empty() {
        let room = DISCORD_EMBED_TOTAL.saturating_sub(used).min(4096);
        embed["description"] = Value::String(truncate(&m.alert.message, room));
    }
    json!({ "username": "Hyperfleet", "allowed_mentions": { "parse": [] }, "embeds": [embed] })
}

pub fn teams(m: &Message) -> Value {
    let colour = match (m.event, m.alert.severity) {
        (NotifyEvent::Resolved, _) => "Good",
        (_, Severity::Critical) => "Attention",
        (_, Severity::Warning) => "Warning",
        (_, Severity::Info) => "Accent",
    };
    let facts: Vec<Value> =
        m.facts().into_iter().map(|(title, value)| json!({ "title": title, "value": value })).collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": format!("[{}] {}", m.headline(), m.alert.title),
                      "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true },
                    { "type": "TextBlock", "text": m.alert.message, "wrap": true },
                    { "type": "FactSet", "facts": facts },
                ],
                "actions": [{ "type": "Action.OpenUrl", "title": "View alert", "url": m.link }],
            },
        }],
    })
}

/// The generic webhook's body: the whole alert.
pub fn webhook(m: &Message) -> Value {
    json!({
        "version": "1",
        "event": m.event.as_str(),
        "notification_id": m.notification_id,
        "sent_at": m.sent_at,
        "link": m.link,
        "alert": m.alert,
    })
}

#[cfg(test)]
mod tests {
    use hyperfleet_core::alert::{AlertSource, NewAlert};

    use super::*;

    fn message(title: &str, body: &str) -> Message {
        let now = Timestamp::now();
        Message {
            event: NotifyEvent::Firing,
            alert: Alert::first(
                &NewAlert::system(AlertSource::Manual, Severity::Critical, title, body)
                    .on_host(Some("hv1"))
                    .label("rack", "r1"),
                now,
            ),
            link: "http://127.0.0.1:8080/api/v1/alerts/x".into(),
            notification_id: NotificationId::new(),
            sent_at: now,
        }
    }

    #[test]
    fn discord_limits_count_characters() {
        let m = message(&"é".repeat(300), &"ü".repeat(5000));
        let v = discord(&m);
        let embed = &v["embeds"][0];
        assert_eq!(embed["title"].as_str().unwrap().chars().count(), 256);
        assert_eq!(embed["description"].as_str().unwrap().chars().count(), 4096);
        assert!(embed["description"].as_str().unwrap().ends_with('…'));
        assert_eq!(embed["color"], 0xD32F2F);
        let total: usize = ["title", "description"].iter().map(|k| embed[k].as_str().unwrap().chars().count()).sum();
        assert!(total <= 6000);
        // A long labels line takes room from the description, never the total past 6000.
        let mut m = message(&"t".repeat(300), &"d".repeat(5000));
        for i in 0..32 {
            m.alert.labels.insert(format!("label{i}"), "v".repeat(200));
        }
        let v = discord(&m);
        let e = &v["embeds"][0];
        let fields: usize = e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().len() + f["value"].as_str().unwrap().chars().count())
            .sum();
        let total = e["title"].as_str().unwrap().chars().count()
            + e["description"].as_str().unwrap().chars().count()
            + fields
            + "Hyperfleet".len();
        assert!(total <= 6000, "{total}");
        assert!(discord(&message("t", ""))["embeds"][0].get("description").is_none());
    }

    #[test]
    fn subjects_have_no_line_breaks_and_slack_text_is_escaped() {
        let m = message("a\r\nb <c> & \"d\"", "x");
        assert_eq!(email_subject(&m), "[Hyperfleet] CRITICAL: a  b <c> & \"d\"");
        assert_eq!(slack(&m)["attachments"][0]["title"], "a\r\nb &lt;c&gt; &amp; \"d\"");
    }
}
