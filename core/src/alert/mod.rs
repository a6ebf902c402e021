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

use crate::{AlertId, Error, OperationId, Result, SilenceId, Timestamp, closed_set::closed_set};

mod matcher;
mod policy;
pub mod sources;

pub(crate) use matcher::label_name_ok;
pub use matcher::{AlertFacts, Matcher, NewSilence, Silence, all_match};
pub use policy::{ChannelHistory, Decision, Route, decide};
pub use sources::AlertChange;

closed_set!(
    /// Ordered: `info < warning < critical`.
    Severity, "invalid_severity", "a severity" { Info = "info", Warning = "warning", Critical = "critical" }
);
closed_set!(
    /// What raised the alert.
    AlertSource, "invalid_source", "an alert source" {
        Health = "health", Operation = "operation", Backup = "backup", Fleet = "fleet", Manual = "manual"
    }
);
closed_set!(AlertStatus, "invalid_alert_status", "an alert status" { Firing = "firing", Resolved = "resolved" });
closed_set!(
    /// An entry of an alert's history.
    EventKind, "invalid_event_kind", "an alert event" {
        Fired = "fired", Repeated = "repeated", Escalated = "escalated", Resolved = "resolved",
        Acknowledged = "acknowledged"
    }
);
closed_set!(
    /// What a notification tells its channel (the `event` field of webhook payloads).
    NotifyEvent, "invalid_notify_event", "a notification event" { Firing = "firing", Resolved = "resolved", Test = "test" }
);
closed_set!(
    NotificationStatus, "invalid_notification_status", "a notification status" {
        Pending = "pending", Delivered = "delivered", Failed = "failed", Suppressed = "suppressed"
    }
);
closed_set!(
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
closed_set!(
    /// `=` equal, `!=` not equal, `=~` / `!~` whole-value regular expression.
    MatchOp, "invalid_matcher", "a matcher operator" { Eq = "=", Ne = "!=", Re = "=~", NotRe = "!~" }
);
closed_set!(
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

/// An observation of an alert, from any source.
#[derive(Debug, Clone, PartialEq)]
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
            crate::vm::HostName::parse(host).map_err(|_| {
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

    /// The given dedup key, or one derived from source, host and title. Keys
    /// of manual alerts live in their own namespace (`manual:…`), so a manual
    /// alert can never update, downgrade or resolve a system one by reusing
    /// its key.
    pub fn effective_dedup_key(&self) -> String {
        match (&self.dedup_key, self.source) {
            (Some(key), AlertSource::Manual) if !key.starts_with("manual:") => format!("manual:{key}"),
            (Some(key), _) => key.clone(),
            (None, source) => format!("{}:{}:{}", source.as_str(), self.host.as_deref().unwrap_or("-"), self.title),
        }
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

/// An alert for the tests of this module's parts.
#[cfg(test)]
pub(crate) fn sample_alert(severity: Severity) -> Alert {
    let new = NewAlert::system(AlertSource::Health, severity, "disk", "").on_host(Some("hv1")).label("check", "disk");
    Alert::first(&new, Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

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
