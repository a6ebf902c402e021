//! One `[[alerts.channels]]` entry: what every channel has (name, severity,
//! matchers, resolves, timeout) plus a [`Transport`] that carries only the
//! fields of its `type`, so an email channel with a `url`, or a Slack channel
//! with a signing secret, cannot be represented.
//!
//! The TOML shape is flat (`type = "webhook"` beside `url` in one table) and a
//! public contract. It is read through [`RawChannel`], the flat table with
//! every key optional, and turned into a [`Channel`] at the edge; a key that
//! does not belong to the channel's type is refused by name.

use serde::{Deserialize, Deserializer, Serialize};

use super::Secret;
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
    send_resolved: Option<bool>,
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

/// `[[alerts.channels]]` as written: one flat table, every key optional.
/// Only [`Channel::try_from`] reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: String,
    #[serde(rename = "type")]
    kind: ChannelKind,
    #[serde(default = "default_min_severity")]
    min_severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    send_resolved: Option<bool>,
    #[serde(default = "default_timeout_s")]
    timeout_s: u64,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    smtp_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smtp_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smtp_security: Option<SmtpSecurity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_plaintext_auth: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to: Vec<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<Secret>,
}

fn default_min_severity() -> Severity {
    Severity::Info
}
fn default_timeout_s() -> u64 {
    10
}

impl TryFrom<RawChannel> for Channel {
    type Error = String;

    fn try_from(raw: RawChannel) -> Result<Self, String> {
        if raw.timeout_s == 0 || raw.timeout_s > 300 {
            return Err("timeout_s must be 1-300".into());
        }
        let transport = match raw.kind {
            ChannelKind::Email => Transport::Email(email(&raw)?),
            ChannelKind::Slack => Transport::Slack(chat(&raw)?),
            ChannelKind::Discord => Transport::Discord(chat(&raw)?),
            ChannelKind::Teams => Transport::Teams(chat(&raw)?),
            ChannelKind::Webhook => Transport::Webhook(SignedHook { url: hook_url(&raw)?, secret: raw.secret.clone() }),
        };
        Ok(Self {
            name: raw.name,
            min_severity: raw.min_severity,
            matchers: raw.matchers,
            send_resolved: raw.send_resolved,
            timeout_s: raw.timeout_s,
            transport,
        })
    }
}

fn email(raw: &RawChannel) -> Result<Email, String> {
    if raw.url.is_some() || raw.secret.is_some() {
        return Err("`url` and `secret` belong to webhook channels".into());
    }
    let smtp_host = raw.smtp_host.clone().filter(|h| !h.is_empty()).ok_or("email channels need `smtp_host`")?;
    let from = raw.from.clone().ok_or("email channels need `from`")?;
    for address in std::iter::once(&from).chain(&raw.to) {
        if !plausible_address(address) {
            return Err(format!("`{address}` is not an email address"));
        }
    }
    if raw.to.is_empty() {
        return Err("email channels need at least one address in `to`".into());
    }
    let credentials = match (raw.username.clone(), raw.password.clone()) {
        (Some(username), Some(password)) => Some(SmtpCredentials { username, password }),
        (None, None) => None,
        _ => return Err("`username` and `password` go together".into()),
    };
    let smtp_security = raw.smtp_security.unwrap_or_default();
    let allow_plaintext_auth = raw.allow_plaintext_auth.unwrap_or(false);
    // Anyone on the path would read the password; a local relay may still want it, when said so.
    if credentials.is_some() && smtp_security == SmtpSecurity::None && !allow_plaintext_auth {
        return Err("`username` and `password` would cross the network in plain text with \
                    `smtp_security = \"none\"`: use `starttls` or `tls`, or set `allow_plaintext_auth = true`"
            .into());
    }
    Ok(Email {
        smtp_host,
        smtp_port: raw.smtp_port,
        smtp_security,
        credentials,
        allow_plaintext_auth,
        from,
        to: raw.to.clone(),
    })
}

/// Slack, Discord and Teams: a URL, nothing else.
fn chat(raw: &RawChannel) -> Result<Hook, String> {
    let url = hook_url(raw)?;
    if raw.secret.is_some() {
        return Err("`secret` signs generic webhooks only".into());
    }
    Ok(Hook { url })
}

/// The URL of any webhook-type channel, which has none of email's keys.
fn hook_url(raw: &RawChannel) -> Result<Secret, String> {
    let email_only = [
        ("smtp_host", raw.smtp_host.is_some()),
        ("smtp_port", raw.smtp_port.is_some()),
        ("smtp_security", raw.smtp_security.is_some()),
        ("allow_plaintext_auth", raw.allow_plaintext_auth.is_some()),
        ("username", raw.username.is_some()),
        ("password", raw.password.is_some()),
        ("from", raw.from.is_some()),
        ("to", !raw.to.is_empty()),
    ];
    if let Some((key, _)) = email_only.iter().find(|(_, set)| *set) {
        return Err(format!("`{key}` belongs to email channels"));
    }
    raw.url.clone().ok_or_else(|| "webhook channels need `url`".into())
}

fn plausible_address(a: &str) -> bool {
    matches!(a.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !a.contains(char::is_whitespace))
}

/// Written back flat, as configured (check-config, the channels API); secrets
/// serialize redacted.
impl From<Channel> for RawChannel {
    fn from(c: Channel) -> Self {
        let kind = c.kind();
        let mut raw = RawChannel {
            name: c.name,
            kind,
            min_severity: c.min_severity,
            matchers: c.matchers,
            send_resolved: c.send_resolved,
            timeout_s: c.timeout_s,
            smtp_host: None,
            smtp_port: None,
            smtp_security: None,
            allow_plaintext_auth: None,
            username: None,
            password: None,
            from: None,
            to: Vec::new(),
            url: None,
            secret: None,
        };
        match c.transport {
            Transport::Email(m) => {
                raw.smtp_host = Some(m.smtp_host);
                raw.smtp_port = m.smtp_port;
                raw.smtp_security = Some(m.smtp_security);
                raw.allow_plaintext_auth = m.allow_plaintext_auth.then_some(true);
                if let Some(c) = m.credentials {
                    raw.username = Some(c.username);
                    raw.password = Some(c.password);
                }
                raw.from = Some(m.from);
                raw.to = m.to;
            }
            Transport::Slack(h) | Transport::Discord(h) | Transport::Teams(h) => raw.url = Some(h.url),
            Transport::Webhook(h) => {
                raw.url = Some(h.url);
                raw.secret = h.secret;
            }
        }
        raw
    }
}

/// `alerts.channels`: each entry parsed, errors prefixed with the channel's
/// position and name.
pub(super) fn parse_all<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Channel>, D::Error> {
    let raw = Vec::<RawChannel>::deserialize(d)?;
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("channel {i} (`{}`)", r.name);
            Channel::try_from(r).map_err(|e| serde::de::Error::custom(format!("{at}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{alert::ChannelKind, settings::AlertSettings};

    const MAIL: &str = "name = \"m\"\ntype = \"email\"\nsmtp_host = \"mx\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n";

    fn hook(kind: &str) -> String {
        format!("name = \"{kind}\"\ntype = \"{kind}\"\nurl = \"https://hooks.example.org/T0/B0/xyz\"\n")
    }

    fn parse(channel: &str) -> Result<AlertSettings, String> {
        toml::from_str(&format!("[[channels]]\n{channel}")).map_err(|e| e.to_string())
    }

    #[test]
    fn each_type_reads_its_own_keys_and_writes_them_back_flat() {
        for (text, kind) in [
            (MAIL.to_owned(), ChannelKind::Email),
            (hook("slack"), ChannelKind::Slack),
            (hook("discord"), ChannelKind::Discord),
            (hook("teams"), ChannelKind::Teams),
            (format!("{}secret = \"k\"\n", hook("webhook")), ChannelKind::Webhook),
        ] {
            let settings = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let channel = &settings.channels[0];
            assert_eq!(channel.kind(), kind);
            let written = toml::to_string(&settings).unwrap();
            assert!(written.contains(&format!("type = \"{}\"", kind.as_str())), "{written}");
            assert!(!written.contains("xyz") && !written.contains("\"k\""), "secrets are redacted: {written}");
            let again: AlertSettings = toml::from_str(&written.replace("\"***\"", "\"https://x\"")).unwrap();
            assert_eq!(again.channels[0].kind(), kind, "{written}");
        }
    }

    #[test]
    fn a_key_of_another_type_is_refused_by_name() {
        let refused = [
            (format!("{MAIL}url = \"https://x\"\n"), "`url` and `secret` belong to webhook channels"),
            (format!("{MAIL}secret = \"k\"\n"), "`url` and `secret` belong to webhook channels"),
            (format!("{}secret = \"k\"\n", hook("slack")), "`secret` signs generic webhooks only"),
            (format!("{}smtp_port = 25\n", hook("discord")), "`smtp_port` belongs to email channels"),
            (format!("{}to = [\"c@d\"]\n", hook("teams")), "`to` belongs to email channels"),
            (format!("{}username = \"u\"\n", hook("webhook")), "`username` belongs to email channels"),
            (format!("{}smtp_hots = \"mx\"\n", hook("webhook")), "unknown field `smtp_hots`"),
            (format!("{MAIL}smtp_hots = \"mx\"\n"), "unknown field `smtp_hots`"),
            (format!("{MAIL}username = \"u\"\n"), "`username` and `password` go together"),
            (format!("{}allow_plaintext_auth = true\n", hook("slack")), "`allow_plaintext_auth` belongs to email"),
            (hook("slack").replace("url = ", "uri = "), "unknown field `uri`"),
            ("name = \"s\"\ntype = \"slack\"\n".into(), "webhook channels need `url`"),
        ];
        for (text, message) in refused {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
            assert!(err.contains("channel 0 (`") || err.contains("unknown field"), "{text}: {err}");
        }
    }

    #[test]
    fn smtp_credentials_need_tls_unless_plain_text_is_allowed() {
        let auth = format!("{MAIL}username = \"u\"\npassword = \"hunter2\"\n");
        let err = parse(&format!("{auth}smtp_security = \"none\"\n")).unwrap_err();
        assert!(
            err.contains("channel 0 (`m`): `username` and `password` would cross the network in plain text"),
            "{err}"
        );
        assert!(err.contains("allow_plaintext_auth = true") && !err.contains("hunter2"), "{err}");
        for accepted in [
            format!("{auth}smtp_security = \"none\"\nallow_plaintext_auth = true\n"),
            format!("{auth}smtp_security = \"starttls\"\n"),
            format!("{auth}smtp_security = \"tls\"\n"),
            auth.clone(),
            format!("{MAIL}smtp_security = \"none\"\n"),
        ] {
            parse(&accepted).unwrap_or_else(|e| panic!("{accepted}: {e}"));
        }
    }
}
