//! `[alerts]`: channels, repeat intervals and the fleet monitor's thresholds.
//!
//! The shape of `[[alerts.channels]]` is a public contract (see the example
//! config). Secrets — SMTP passwords, webhook URLs, signing secrets — are
//! given inline, or as `{ env = "VAR" }` / `{ file = "/path" }`, and are
//! redacted in `Debug`, in `check-config` and in the API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};
use crate::alert::{ChannelKind, Matcher, Route, Severity};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelSettings>,
    /// While an alert fires, a channel hears of it again at most once per interval.
    #[serde(default)]
    pub repeat_s: RepeatIntervals,
    /// Base of the links in notifications (`<public_url>/api/v1/alerts/<id>`);
    /// default: `http://<api.listen>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Attempts of one delivery before it fails for good and raises `delivery failed` elsewhere.
    #[serde(default = "default_delivery_attempts")]
    pub delivery_max_attempts: u32,
    /// How often the fleet monitor looks for offline workers and backlog.
    #[serde(default = "default_monitor_interval_s")]
    pub monitor_interval_s: u64,
    /// Runnable work older than this raises a backlog warning for its queue.
    #[serde(default = "default_backlog_threshold_s")]
    pub backlog_threshold_s: u64,
}

fn default_delivery_attempts() -> u32 {
    10
}
fn default_monitor_interval_s() -> u64 {
    30
}
fn default_backlog_threshold_s() -> u64 {
    600
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            repeat_s: RepeatIntervals::default(),
            public_url: None,
            delivery_max_attempts: default_delivery_attempts(),
            monitor_interval_s: default_monitor_interval_s(),
            backlog_threshold_s: default_backlog_threshold_s(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatIntervals {
    #[serde(default = "repeat_critical")]
    pub critical: u64,
    #[serde(default = "repeat_warning")]
    pub warning: u64,
    #[serde(default = "repeat_info")]
    pub info: u64,
}

fn repeat_critical() -> u64 {
    Severity::Critical.default_repeat().as_secs()
}
fn repeat_warning() -> u64 {
    Severity::Warning.default_repeat().as_secs()
}
fn repeat_info() -> u64 {
    Severity::Info.default_repeat().as_secs()
}

impl Default for RepeatIntervals {
    fn default() -> Self {
        Self { critical: repeat_critical(), warning: repeat_warning(), info: repeat_info() }
    }
}

impl RepeatIntervals {
    pub fn of(&self, severity: Severity) -> Duration {
        Duration::from_secs(match severity {
            Severity::Critical => self.critical,
            Severity::Warning => self.warning,
            Severity::Info => self.info,
        })
    }
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

/// One notification channel. Fields that do not belong to its `type` are rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// All must match for an alert to go to this channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
    /// Notify when an alert resolves; default: on for webhooks (slack, discord,
    /// teams, webhook), off for email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    /// One delivery attempt may take this long.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    /// Default: 25 (`none`), 587 (`starttls`), 465 (`tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_security: Option<SmtpSecurity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,

    /// The webhook URL (Slack, Discord and Teams URLs carry their credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// HMAC-SHA256 signing secret of `webhook` channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

fn default_min_severity() -> Severity {
    Severity::Info
}
fn default_timeout_s() -> u64 {
    10
}

impl ChannelSettings {
    pub fn send_resolved(&self) -> bool {
        self.send_resolved.unwrap_or(self.kind != ChannelKind::Email)
    }

    pub fn route(&self) -> Route<'_> {
        Route {
            channel: &self.name,
            min_severity: self.min_severity,
            matchers: &self.matchers,
            send_resolved: self.send_resolved(),
        }
    }

    pub fn smtp_port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.smtp_security.unwrap_or_default() {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        })
    }

    /// Where this channel sends, for people: `smtp://host:port → a, b`, or the
    /// webhook's origin with its path hidden (the path is often the credential).
    pub fn target(&self) -> String {
        match self.kind {
            ChannelKind::Email => format!(
                "smtp://{}:{} → {}",
                self.smtp_host.as_deref().unwrap_or("?"),
                self.smtp_port(),
                self.to.join(", ")
            ),
            _ => match self.url.as_ref().map(Secret::reveal) {
                Some(Ok(url)) => redact_path(&url),
                _ => "(unresolved)".into(),
            },
        }
    }

    fn check(&self, at: &str) -> Result<(), ConfigError> {
        let bad =
            |message: String| ConfigError::Invalid { key: "alerts.channels", message: format!("{at}: {message}") };
        let email_only = [
            ("smtp_host", self.smtp_host.is_some()),
            ("smtp_port", self.smtp_port.is_some()),
            ("smtp_security", self.smtp_security.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("from", self.from.is_some()),
            ("to", !self.to.is_empty()),
        ];
        for m in &self.matchers {
            m.validate().map_err(|e| bad(e.to_string()))?;
        }
        if self.timeout_s == 0 || self.timeout_s > 300 {
            return Err(bad("timeout_s must be 1-300".into()));
        }
        if self.kind == ChannelKind::Email {
            if self.url.is_some() || self.secret.is_some() {
                return Err(bad("`url` and `secret` belong to webhook channels".into()));
            }
            if self.smtp_host.as_deref().is_none_or(str::is_empty) {
                return Err(bad("email channels need `smtp_host`".into()));
            }
            let from = self.from.as_deref().ok_or_else(|| bad("email channels need `from`".into()))?;
            for address in std::iter::once(from).chain(self.to.iter().map(String::as_str)) {
                if !plausible_address(address) {
                    return Err(bad(format!("`{address}` is not an email address")));
                }
            }
            if self.to.is_empty() {
                return Err(bad("email channels need at least one address in `to`".into()));
            }
            if self.password.is_some() != self.username.is_some() {
                return Err(bad("`username` and `password` go together".into()));
            }
            if let Some(p) = &self.password {
                p.reveal().map_err(|e| bad(format!("password: {e}")))?;
            }
            return Ok(());
        }
        if let Some((field, _)) = email_only.iter().find(|(_, set)| *set) {
            return Err(bad(format!("`{field}` belongs to email channels")));
        }
        let url = self.url.as_ref().ok_or_else(|| bad("webhook channels need `url`".into()))?;
        let url = url.reveal().map_err(|e| bad(format!("url: {e}")))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("`url` must be an http:// or https:// URL".into()));
        }
        match (&self.secret, self.kind) {
            (Some(s), ChannelKind::Webhook) => {
                s.reveal().map_err(|e| bad(format!("secret: {e}")))?;
            }
            (Some(_), _) => return Err(bad("`secret` signs generic webhooks only".into())),
            (None, _) => {}
        }
        Ok(())
    }
}

fn plausible_address(a: &str) -> bool {
    matches!(a.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !a.contains(char::is_whitespace))
}

/// A URL as people may see it: scheme, host and port only. Credentials in the
/// userinfo, the path and the query (each often the secret of a webhook) are
/// hidden: `https://user:pw@hooks.slack.com/services/T/B/x?k=v` →
/// `https://***@hooks.slack.com/***`.
pub fn redact_path(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], true),
        None => (rest, false),
    };
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    format!("{}{host}{}", &url[..start], if tail { "/***" } else { "" })
}

impl AlertSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            let at = format!("channel {i} (`{}`)", c.name);
            let name_ok = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
            if !name_ok {
                return Err(ConfigError::Invalid {
                    key: "alerts.channels",
                    message: format!("{at}: names are 1-64 of A-Z a-z 0-9 - _ ."),
                });
            }
            if !seen.insert(c.name.as_str()) {
                return Err(ConfigError::Invalid { key: "alerts.channels", message: format!("{at}: duplicate name") });
            }
            c.check(&at)?;
        }
        if self.delivery_max_attempts == 0 {
            return Err(ConfigError::Invalid {
                key: "alerts.delivery_max_attempts",
                message: "must be at least 1".into(),
            });
        }
        if self.monitor_interval_s == 0 {
            return Err(ConfigError::Invalid {
                key: "alerts.monitor_interval_s",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelSettings> {
        self.channels.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::redact_path;
    use crate::settings::Settings;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Settings::load(Some(&path), env).map_err(|e| e.to_string())
    }

    const HOOK: &str =
        "[[alerts.channels]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"https://hooks.example.org/T0/B0/xyz\"\n";

    #[test]
    fn channels_are_checked_per_type() {
        let err = load("[[alerts.channels]]\nname = \"m\"\ntype = \"email\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n", &[]);
        assert!(err.unwrap_err().contains("channel 0 (`m`): email channels need `smtp_host`"));
        let err = load(&format!("{HOOK}smtp_host = \"x\"\n"), &[]).unwrap_err();
        assert!(err.contains("`smtp_host` belongs to email channels"), "{err}");
        let err = load(&format!("{HOOK}{HOOK}"), &[]).unwrap_err();
        assert!(err.contains("duplicate name"), "{err}");
        let err = load("[[alerts.channels]]\nname = \"s\"\ntype = \"slack\"\nurl = \"ftp://x\"\n", &[]).unwrap_err();
        assert!(err.contains("http:// or https://"), "{err}");
        let err = load("[[alerts.channels]]\nname = \"s\"\ntype = \"pager\"\nurl = \"http://x\"\n", &[]).unwrap_err();
        assert!(err.contains("pager"), "{err}");
        let err =
            load(&format!("{HOOK}matchers = [{{ name = \"x\", op = \"=~\", value = \"(\" }}]\n"), &[]).unwrap_err();
        assert!(err.contains("matcher"), "{err}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_files_and_are_never_shown() {
        let missing = "[[alerts.channels]]\nname = \"h\"\ntype = \"webhook\"\nurl = { env = \"HF_UNSET_HOOK_URL\" }\n";
        let err = load(missing, &[]).unwrap_err();
        assert!(err.contains("HF_UNSET_HOOK_URL is not set"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("url");
        std::fs::write(&url_file, "https://hooks.example.org/T0/B0/xyz\n").unwrap();
        // `PATH` is set in every test environment; its value stands in for a secret.
        let toml = format!(
            "[[alerts.channels]]\nname = \"h\"\ntype = \"webhook\"\nurl = {{ file = {:?} }}\nsecret = {{ env = \"PATH\" }}\n\n\
             [[alerts.channels]]\nname = \"m\"\ntype = \"email\"\nsmtp_host = \"mx\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n\
             username = \"u\"\npassword = \"hunter2\"\n",
            url_file.display().to_string()
        );
        let s = load(&toml, &[]).unwrap();
        let hook = &s.alerts.channels[0];
        assert_eq!(hook.url.as_ref().unwrap().reveal().unwrap(), "https://hooks.example.org/T0/B0/xyz");
        assert_eq!(hook.secret.as_ref().unwrap().reveal().unwrap(), std::env::var("PATH").unwrap());
        assert_eq!(hook.target(), "https://hooks.example.org/***");
        for (url, shown) in [
            ("http://hookuser:HOOKPASS123@10.0.0.1:8080/hook?token=t", "http://***@10.0.0.1:8080/***"),
            ("https://user:pw@example.org", "https://***@example.org"),
            ("https://example.org?key=k", "https://example.org/***"),
            ("https://example.org", "https://example.org"),
        ] {
            assert_eq!(redact_path(url), shown, "{url}");
        }
        assert!(hook.send_resolved(), "webhooks get resolves by default");
        let mail = &s.alerts.channels[1];
        assert_eq!(mail.smtp_port(), 587, "STARTTLS by default");
        assert!(!mail.send_resolved(), "email gets no resolves by default");
        let shown = format!("{s:?}\n{}", s.to_redacted_toml());
        assert!(!shown.contains("hunter2") && !shown.contains("xyz"), "{shown}");
        assert!(shown.contains("password = \"***\""), "{shown}");
    }
}
