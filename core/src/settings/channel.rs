//! One `[[alerts.channels]]` entry: what every channel has (name, severity,
//! matchers, resolves, timeout) plus a [`Transport`] that carries only the
//! fields of its `type`, so an email channel with a `url`, or a Slack channel
//! with a signing secret, cannot be represented.
//!
//! The TOML shape is flat (`type = "webhook"` beside `url` in one table) and a
//! public contract; `channel_toml` reads and writes it.

use serde::{Deserialize, Serialize};

use super::{Secret, channel_toml::RawChannel};
use crate::alert::{ChannelKind, Matcher, Route, Severity};

/// A configured notification channel.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "RawChannel")]
pub struct Channel {
    pub name: String,
    pub min_severity: Severity,
    /// All must match for an alert to go to this channel.
    pub matchers: Vec<Matcher>,
    /// As configured; [`Channel::send_resolved`] applies the per-type default.
    pub(super) send_resolved: Option<bool>,
    /// One delivery attempt may take this long.
    pub timeout_s: u64,
    pub transport: Transport,
}

/// How a channel sends, with the settings of that way only.
#[derive(Debug, Clone)]
pub enum Transport {
    Email(Email),
    Slack(Hook),
    Discord(Hook),
    /// A Teams Workflows webhook (Adaptive Card).
    Teams(Hook),
    /// The whole alert as JSON, optionally signed.
    Webhook(SignedHook),
}

#[derive(Debug, Clone)]
pub struct Email {
    pub smtp_host: String,
    /// Default: 25 (`none`), 587 (`starttls`), 465 (`tls`).
    pub smtp_port: Option<u16>,
    pub smtp_security: SmtpSecurity,
    pub credentials: Option<SmtpCredentials>,
    /// Whether `credentials` may cross a connection without TLS (`smtp_security = "none"`).
    pub allow_plaintext_auth: bool,
    pub from: String,
    /// At least one address.
    pub to: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: Secret,
}

/// A chat webhook; its URL carries its credential.
#[derive(Debug, Clone)]
pub struct Hook {
    pub url: Secret,
}

#[derive(Debug, Clone)]
pub struct SignedHook {
    pub url: Secret,
    /// HMAC-SHA256 signing secret (`X-Hyperfleet-Signature`).
    pub secret: Option<Secret>,
}

/// `none`: plain SMTP (a local relay); `starttls`: upgrade on port 587;
/// `tls`: implicit TLS on port 465.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    #[default]
    Starttls,
    Tls,
}

impl Channel {
    pub fn kind(&self) -> ChannelKind {
        match self.transport {
            Transport::Email(_) => ChannelKind::Email,
            Transport::Slack(_) => ChannelKind::Slack,
            Transport::Discord(_) => ChannelKind::Discord,
            Transport::Teams(_) => ChannelKind::Teams,
            Transport::Webhook(_) => ChannelKind::Webhook,
        }
    }

    /// Default: on for webhooks (slack, discord, teams, webhook), off for email.
    pub fn send_resolved(&self) -> bool {
        self.send_resolved.unwrap_or(self.kind() != ChannelKind::Email)
    }

    pub fn route(&self) -> Route<'_> {
        Route {
            channel: &self.name,
            min_severity: self.min_severity,
            matchers: &self.matchers,
            send_resolved: self.send_resolved(),
        }
    }

    /// The URL of a webhook-type channel.
    pub fn url(&self) -> Option<&Secret> {
        match &self.transport {
            Transport::Email(_) => None,
            Transport::Slack(h) | Transport::Discord(h) | Transport::Teams(h) => Some(&h.url),
            Transport::Webhook(h) => Some(&h.url),
        }
    }

    /// Where this channel sends, for people: `smtp://host:port → a, b`, or the
    /// webhook's origin with its path hidden (the path is often the credential).
    pub fn target(&self) -> String {
        match (&self.transport, self.url().map(Secret::reveal)) {
            (Transport::Email(m), _) => format!("smtp://{}:{} → {}", m.smtp_host, m.smtp_port(), m.to.join(", ")),
            (_, Some(Ok(url))) => super::redact_path(&url),
            _ => "(unresolved)".into(),
        }
    }

    /// What can only be checked when the secrets are read: they resolve, and
    /// URLs are http(s). (A `{ file = … }` secret is read again at each use.)
    pub(super) fn check_secrets(&self) -> Result<(), String> {
        if let Transport::Email(Email { credentials: Some(c), .. }) = &self.transport {
            c.password.reveal().map_err(|e| format!("password: {e}"))?;
        }
        if let Some(url) = self.url() {
            let url = url.reveal().map_err(|e| format!("url: {e}"))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err("`url` must be an http:// or https:// URL".into());
            }
        }
        if let Transport::Webhook(SignedHook { secret: Some(s), .. }) = &self.transport {
            s.reveal().map_err(|e| format!("secret: {e}"))?;
        }
        Ok(())
    }
}

impl Email {
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.smtp_security {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        })
    }
}
