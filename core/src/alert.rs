//! Alerts: the vocabulary, the input checks and the notification policy.
//!
//! An alert is one incident, identified while it fires by its dedup key. Each
//! time a source observes it, the alert gains an *event* (`fired`, `repeated`,
//! `escalated`, `resolved`); the router (run by the scheduler) turns every
//! event into one *notification* per configured channel — sent as an
//! `alert.deliver` operation, or suppressed with a reason. [`decide`] is that
//! policy, written once and free of I/O so that it can be read and tested on
//! its own.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{AlertId, Error, OperationId, Result, SilenceId, Timestamp};

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $code:literal, $what:literal {
        $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vdoc])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Result<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    Error::invalid($code, format!("`{text}` is not {}; use one of: {}", $what, known.join(", ")))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Ordered: `info < warning < critical`.
    Severity, "invalid_severity", "a severity" { Info = "info", Warning = "warning", Critical = "critical" }
);
text_enum!(
    /// What raised the alert.
    AlertSource, "invalid_source", "an alert source" {
        Health = "health", Operation = "operation", Backup = "backup", Fleet = "fleet", Manual = "manual"
    }
);
text_enum!(AlertStatus, "invalid_alert_status", "an alert status" { Firing = "firing", Resolved = "resolved" });
text_enum!(
    /// An entry of an alert's history.
    EventKind, "invalid_event_kind", "an alert event" {
        Fired = "fired", Repeated = "repeated", Escalated = "escalated", Resolved = "resolved",
        Acknowledged = "acknowledged"
    }
);
text_enum!(
    /// What a notification tells its channel (the `event` field of webhook payloads).
    NotifyEvent, "invalid_notify_event", "a notification event" { Firing = "firing", Resolved = "resolved", Test = "test" }
);
text_enum!(
    NotificationStatus, "invalid_notification_status", "a notification status" {
        Pending = "pending", Delivered = "delivered", Failed = "failed", Suppressed = "suppressed"
    }
);
text_enum!(
    /// Why a notification was not sent.
    SuppressReason, "invalid_suppress_reason", "a suppression reason" {
        /// A notification of this alert went to the channel less than a repeat interval ago.
        Cooldown = "cooldown",
        Silenced = "silenced",
        Acknowledged = "acknowledged",
        BelowSeverity = "below_severity",
        /// The channel's matchers do not select this alert.
        Unmatched = "unmatched"
    }
);
text_enum!(
    /// `=` equal, `!=` not equal, `=~` / `!~` whole-value regular expression.
    MatchOp, "invalid_matcher", "a matcher operator" { Eq = "=", Ne = "!=", Re = "=~", NotRe = "!~" }
);
text_enum!(
    ChannelKind, "invalid_channel_type", "a channel type" {
        Email = "email", Slack = "slack", Discord = "discord", Teams = "teams", Webhook = "webhook"
    }
);

impl Severity {
    /// The seed's cooldowns, kept as the repeat intervals' defaults.
    pub fn default_repeat(self) -> Duration {
        Duration::from_secs(match self {
            Self::Critical => 300,
            Self::Warning => 600,
            Self::Info => 3600,
        })
    }
}

pub const MAX_TITLE_CHARS: usize = 512;
pub const MAX_MESSAGE_CHARS: usize = 16_384;
pub const MAX_LABELS: usize = 32;
pub const MAX_DEDUP_KEY_CHARS: usize = 512;

/// Selects alerts by one field: `source`, `host`, `severity`, `title`, or any
/// other name for the label of that name. An absent field or label is `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    #[serde(default = "default_op")]
    pub op: MatchOp,
    pub value: String,
}

fn default_op() -> MatchOp {
    MatchOp::Eq
}

impl Matcher {
    pub fn validate(&self) -> Result<()> {
        if !label_name_ok(&self.name) {
            return Err(Error::invalid("invalid_matcher", format!("matcher name `{}` is not a label name", self.name)));
        }
        if self.value.chars().count() > MAX_TITLE_CHARS {
            return Err(Error::invalid("invalid_matcher", "a matcher value is at most 512 characters"));
        }
        if matches!(self.op, MatchOp::Re | MatchOp::NotRe) {
            self.regex()?;
        }
        Ok(())
    }

    fn regex(&self) -> Result<regex::Regex> {
        regex::Regex::new(&format!("^(?:{})$", self.value))
            .map_err(|e| Error::invalid("invalid_matcher", format!("matcher `{}`: {e}", self.name)))
    }

    pub fn matches(&self, alert: &AlertFacts<'_>) -> bool {
        let field = match self.name.as_str() {
            "source" => alert.source.as_str(),
            "host" => alert.host.unwrap_or(""),
            "severity" => alert.severity.as_str(),
            "title" => alert.title,
            label => alert.labels.get(label).map_or("", String::as_str),
        };
        match self.op {
            MatchOp::Eq => field == self.value,
            MatchOp::Ne => field != self.value,
            MatchOp::Re => self.regex().is_ok_and(|r| r.is_match(field)),
            MatchOp::NotRe => self.regex().is_ok_and(|r| !r.is_match(field)),
        }
    }
}

pub fn all_match(matchers: &[Matcher], alert: &AlertFacts<'_>) -> bool {
    matchers.iter().all(|m| m.matches(alert))
}

fn label_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// What matchers look at.
#[derive(Debug, Clone, Copy)]
pub struct AlertFacts<'a> {
    pub source: AlertSource,
    pub host: Option<&'a str>,
    pub severity: Severity,
    pub title: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// An observation of an alert, from any source.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub source: AlertSource,
    pub host: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub labels: BTreeMap<String, String>,
    pub dedup_key: Option<String>,
    /// The operation this alert is about (an operation that failed for good).
    pub operation_id: Option<OperationId>,
    /// A channel this alert must not go to (the channel whose delivery failed).
    pub exclude_channel: Option<String>,
    /// Who raised it: a token name, or `hyperfleet` for the system's own sources.
    pub actor: String,
}

impl NewAlert {
    pub fn system(
        source: AlertSource,
        severity: Severity,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            source,
            host: None,
            severity,
            title: title.into(),
            message: message.into(),
            labels: BTreeMap::new(),
            dedup_key: None,
            operation_id: None,
            exclude_channel: None,
            actor: "hyperfleet".into(),
        }
    }

    pub fn on_host(mut self, host: Option<&str>) -> Self {
        self.host = host.map(str::to_owned);
        self
    }

    pub fn label(mut self, name: &str, value: impl Into<String>) -> Self {
        self.labels.insert(name.to_owned(), value.into());
        self
    }

    pub fn dedup(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }

    /// Checks what a caller sent; the system's own alerts pass by construction.
    pub fn validate(&self) -> Result<()> {
        let title_chars = self.title.chars().count();
        if self.title.trim().is_empty() || title_chars > MAX_TITLE_CHARS {
            return Err(Error::invalid("invalid_title", format!("`title` must be 1-{MAX_TITLE_CHARS} characters")));
        }
        if self.message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Error::invalid(
                "invalid_message",
                format!("`message` is at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        if let Some(host) = &self.host {
            crate::vm::VmName::parse(host).map_err(|_| {
                Error::invalid("invalid_host", "`host` is 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
            })?;
        }
        if self.labels.len() > MAX_LABELS {
            return Err(Error::invalid("invalid_labels", format!("at most {MAX_LABELS} labels")));
        }
        for (name, value) in &self.labels {
            if !label_name_ok(name) || matches!(name.as_str(), "source" | "host" | "severity" | "title") {
                return Err(Error::invalid(
                    "invalid_labels",
                    format!(
                        "label name `{name}`: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or _, not a field name"
                    ),
                ));
            }
            if value.chars().count() > 256 {
                return Err(Error::invalid(
                    "invalid_labels",
                    format!("label `{name}`: values are at most 256 characters"),
                ));
            }
        }
        if let Some(key) = &self.dedup_key
            && (key.trim().is_empty() || key.chars().count() > MAX_DEDUP_KEY_CHARS || key.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                "invalid_dedup_key",
                format!("`dedup_key` must be 1-{MAX_DEDUP_KEY_CHARS} characters without control characters"),
            ));
        }
        Ok(())
    }

    /// The given dedup key, or one derived from source, host and title.
    pub fn effective_dedup_key(&self) -> String {
        self.dedup_key.clone().unwrap_or_else(|| {
            format!("{}:{}:{}", self.source.as_str(), self.host.as_deref().unwrap_or("-"), self.title)
        })
    }
}

/// An alert as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: AlertId,
    pub dedup_key: String,
    pub source: AlertSource,
    pub host: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub labels: BTreeMap<String, String>,
    pub status: AlertStatus,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub occurrences: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
    pub operation_id: Option<OperationId>,
    pub created_by: String,
    #[serde(skip)]
    pub exclude_channel: Option<String>,
}

impl Alert {
    /// The alert a first observation creates (what the store inserts; also
    /// what a test notification shows, never stored).
    pub fn first(new: &NewAlert, now: Timestamp) -> Self {
        Alert {
            id: AlertId::new(),
            dedup_key: new.effective_dedup_key(),
            source: new.source,
            host: new.host.clone(),
            severity: new.severity,
            title: new.title.clone(),
            message: new.message.clone(),
            labels: new.labels.clone(),
            status: AlertStatus::Firing,
            first_seen: now,
            last_seen: now,
            resolved_at: None,
            occurrences: 1,
            acknowledged_by: None,
            acknowledged_at: None,
            operation_id: new.operation_id,
            created_by: new.actor.clone(),
            exclude_channel: new.exclude_channel.clone(),
        }
    }

    pub fn facts(&self) -> AlertFacts<'_> {
        AlertFacts {
            source: self.source,
            host: self.host.as_deref(),
            severity: self.severity,
            title: &self.title,
            labels: &self.labels,
        }
    }
}

/// A silence as stored; it mutes notifications of matching alerts between
/// `starts_at` and `ends_at` (expiring one sets `ends_at` to now).
#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    pub id: SilenceId,
    pub matchers: Vec<Matcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub created_at: Timestamp,
}

impl Silence {
    pub fn active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn mutes(&self, alert: &AlertFacts<'_>, now: Timestamp) -> bool {
        self.active(now) && all_match(&self.matchers, alert)
    }
}

#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Timestamp,
    pub comment: String,
    pub created_by: String,
}

impl NewSilence {
    pub fn validate(&self, now: Timestamp) -> Result<()> {
        if self.matchers.is_empty() || self.matchers.len() > 16 {
            return Err(Error::invalid("invalid_matcher", "a silence needs 1-16 matchers"));
        }
        for m in &self.matchers {
            m.validate()?;
        }
        let starts = self.starts_at.unwrap_or(now);
        if self.ends_at <= starts || self.ends_at <= now {
            return Err(Error::invalid("invalid_time_window", "`ends_at` must be later than `starts_at` and than now"));
        }
        if self.comment.trim().is_empty() || self.comment.chars().count() > 1024 {
            return Err(Error::invalid("invalid_comment", "`comment` must be 1-1024 characters (say why)"));
        }
        Ok(())
    }
}

/// A channel as the router sees it (no secrets, no transport).
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub channel: &'a str,
    pub min_severity: Severity,
    pub matchers: &'a [Matcher],
    pub send_resolved: bool,
}

/// What a channel has already been told about an alert.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelHistory {
    /// When the last firing notification to this channel was sent (not suppressed).
    pub last_firing_sent: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send(NotifyEvent),
    Suppress(SuppressReason),
    /// Nothing to say, nothing to count: a resolve for a channel that never
    /// heard of the alert, or that does not want resolves.
    Skip,
}

/// The notification policy for one event of one alert on one channel.
///
/// - `fired` and `escalated` (severity went up) notify at once;
/// - `repeated` notifies only when the channel heard nothing of this alert for
///   the severity's repeat interval, and never once the alert is acknowledged;
/// - `resolved` notifies channels that were told it fired, if they want resolves;
/// - silences mute everything they match; routing (severity, matchers) comes first.
pub fn decide(
    route: &Route<'_>,
    alert: &Alert,
    event: EventKind,
    silenced: bool,
    history: ChannelHistory,
    repeat: Duration,
    now: Timestamp,
) -> Decision {
    if alert.exclude_channel.as_deref() == Some(route.channel) {
        return Decision::Skip;
    }
    if event == EventKind::Resolved {
        if !route.send_resolved || history.last_firing_sent.is_none() {
            return Decision::Skip;
        }
        return if silenced {
            Decision::Suppress(SuppressReason::Silenced)
        } else {
            Decision::Send(NotifyEvent::Resolved)
        };
    }
    if event == EventKind::Acknowledged {
        return Decision::Skip;
    }
    if alert.severity < route.min_severity {
        return Decision::Suppress(SuppressReason::BelowSeverity);
    }
    if !all_match(route.matchers, &alert.facts()) {
        return Decision::Suppress(SuppressReason::Unmatched);
    }
    if silenced {
        return Decision::Suppress(SuppressReason::Silenced);
    }
    if event == EventKind::Repeated {
        if alert.acknowledged_at.is_some() {
            return Decision::Suppress(SuppressReason::Acknowledged);
        }
        if let Some(last) = history.last_firing_sent
            && now.millis_since(last) < repeat.as_millis() as f64
        {
            return Decision::Suppress(SuppressReason::Cooldown);
        }
    }
    Decision::Send(NotifyEvent::Firing)
}

/// A notification as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: crate::NotificationId,
    pub alert_id: Option<AlertId>,
    pub event_id: Option<crate::AlertEventId>,
    pub channel: String,
    pub event: NotifyEvent,
    pub status: NotificationStatus,
    pub reason: Option<SuppressReason>,
    pub silence_id: Option<SilenceId>,
    pub operation_id: Option<OperationId>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub detail: Option<String>,
}

/// An entry of an alert's history.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    pub id: crate::AlertEventId,
    pub alert_id: AlertId,
    pub kind: EventKind,
    pub at: Timestamp,
    pub severity: Severity,
    pub message: String,
    pub actor: String,
    pub operation_id: Option<OperationId>,
}

/// Parameters of an `alert.deliver` operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverParams {
    pub notification_id: crate::NotificationId,
    pub channel: String,
    pub event: NotifyEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(severity: Severity) -> Alert {
        let new =
            NewAlert::system(AlertSource::Health, severity, "disk", "").on_host(Some("hv1")).label("check", "disk");
        Alert::first(&new, Timestamp::now())
    }

    const ROUTE: Route<'static> =
        Route { channel: "c", min_severity: Severity::Warning, matchers: &[], send_resolved: true };

    #[test]
    fn policy() {
        let now = Timestamp::now();
        let repeat = Duration::from_secs(300);
        let a = alert(Severity::Critical);
        let never = ChannelHistory::default();
        let recent = ChannelHistory { last_firing_sent: Some(now.minus(Duration::from_secs(10))) };
        let old = ChannelHistory { last_firing_sent: Some(now.minus(Duration::from_secs(301))) };
        let d = |a: &Alert, e, s, h| decide(&ROUTE, a, e, s, h, repeat, now);
        assert_eq!(d(&a, EventKind::Fired, false, never), Decision::Send(NotifyEvent::Firing));
        assert_eq!(d(&a, EventKind::Repeated, false, recent), Decision::Suppress(SuppressReason::Cooldown));
        assert_eq!(d(&a, EventKind::Repeated, false, old), Decision::Send(NotifyEvent::Firing));
        assert_eq!(d(&a, EventKind::Escalated, false, recent), Decision::Send(NotifyEvent::Firing));
        assert_eq!(d(&a, EventKind::Fired, true, never), Decision::Suppress(SuppressReason::Silenced));
        assert_eq!(d(&a, EventKind::Resolved, false, never), Decision::Skip);
        assert_eq!(d(&a, EventKind::Resolved, false, recent), Decision::Send(NotifyEvent::Resolved));
        let info = alert(Severity::Info);
        assert_eq!(d(&info, EventKind::Fired, false, never), Decision::Suppress(SuppressReason::BelowSeverity));
        let mut acked = alert(Severity::Critical);
        acked.acknowledged_at = Some(now);
        assert_eq!(d(&acked, EventKind::Repeated, false, old), Decision::Suppress(SuppressReason::Acknowledged));
        let no_resolve = Route { send_resolved: false, ..ROUTE };
        assert_eq!(decide(&no_resolve, &a, EventKind::Resolved, false, recent, repeat, now), Decision::Skip);
        let mut excluded = alert(Severity::Critical);
        excluded.exclude_channel = Some("c".into());
        assert_eq!(d(&excluded, EventKind::Fired, false, never), Decision::Skip);
    }

    #[test]
    fn matchers() {
        let a = alert(Severity::Warning);
        let m = |name: &str, op, value: &str| Matcher { name: name.into(), op, value: value.into() };
        assert!(m("host", MatchOp::Eq, "hv1").matches(&a.facts()));
        assert!(m("check", MatchOp::Re, "di.k").matches(&a.facts()));
        assert!(!m("check", MatchOp::Re, "di").matches(&a.facts()), "regexes match whole values");
        assert!(m("severity", MatchOp::Ne, "critical").matches(&a.facts()));
        assert!(m("missing", MatchOp::Eq, "").matches(&a.facts()));
        assert!(m("x", MatchOp::Re, "(").validate().is_err());
        assert!(m("bad name", MatchOp::Eq, "").validate().is_err());
    }

    #[test]
    fn dedup_keys_and_input() {
        let a =
            NewAlert::system(AlertSource::Manual, Severity::Info, "Disk \"full\"\n<script>", "é").on_host(Some("hv1"));
        assert_eq!(a.effective_dedup_key(), "manual:hv1:Disk \"full\"\n<script>");
        a.validate().unwrap();
        assert!(NewAlert::system(AlertSource::Manual, Severity::Info, " ", "").validate().is_err());
        assert!(a.clone().label("host", "x").validate().is_err());
        assert!(a.clone().dedup("a\u{0}b").validate().is_err());
        assert_eq!(Severity::parse("critical").unwrap(), Severity::Critical);
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!(Severity::parse("fatal").unwrap_err().code(), "invalid_severity");
    }
}
