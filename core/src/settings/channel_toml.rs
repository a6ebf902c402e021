//! `[[alerts.channels]]` as written: one flat table (`type = "webhook"` beside
//! `url`), every key optional, turned into a [`Channel`] at the edge. A key
//! that does not belong to the channel's type is refused by name.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Channel, Email, Hook, Secret, SignedHook, SmtpCredentials, SmtpSecurity, Transport};
use crate::alert::{ChannelKind, Matcher, Severity};

/// `[[alerts.channels]]` as written: one flat table, every key optional.
/// Only [`Channel::try_from`] reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
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
