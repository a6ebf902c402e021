//! `[alerts]`: channels, repeat intervals and the fleet monitor's thresholds.
//!
//! The shape of `[[alerts.channels]]` is a public contract (see the example
//! config). Secrets — SMTP passwords, webhook URLs, signing secrets — are
//! given inline, or as `{ env = "VAR" }` / `{ file = "/path" }`, and are
//! redacted in `Debug`, in `check-config` and in the API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Channel, ConfigError};
use crate::alert::Severity;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "super::channel_toml::parse_all")]
    pub channels: Vec<Channel>,
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
            let bad = |message: String| ConfigError::Invalid {
                key: "alerts.channels",
                message: format!("channel {i} (`{}`): {message}", c.name),
            };
            let name_ok = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
            if !name_ok {
                return Err(bad("names are 1-64 of A-Z a-z 0-9 - _ .".into()));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(bad("duplicate name".into()));
            }
            for m in &c.matchers {
                m.validate().map_err(|e| bad(e.to_string()))?;
            }
            c.check_secrets().map_err(bad)?;
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

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::redact_path;
    use crate::settings::{Settings, Transport};

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
        let Transport::Webhook(signed) = &hook.transport else { panic!("{hook:?}") };
        assert_eq!(signed.url.reveal().unwrap(), "https://hooks.example.org/T0/B0/xyz");
        assert_eq!(signed.secret.as_ref().unwrap().reveal().unwrap(), std::env::var("PATH").unwrap());
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
        let Transport::Email(smtp) = &mail.transport else { panic!("{mail:?}") };
        assert_eq!(smtp.smtp_port(), 587, "STARTTLS by default");
        assert!(!mail.send_resolved(), "email gets no resolves by default");
        let shown = format!("{s:?}\n{}", s.to_redacted_toml());
        assert!(!shown.contains("hunter2") && !shown.contains("xyz"), "{shown}");
        assert!(shown.contains("password = \"***\""), "{shown}");
    }
}
