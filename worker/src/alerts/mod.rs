//! Sending notifications: SMTP through lettre, webhooks through reqwest. One
//! call is one delivery attempt; retries are the ledger's (durable backoff),
//! so nothing here loops. Failures are classed for the ledger: a peer that is
//! down, slow or overloaded (connection errors, timeouts, SMTP 4xx, HTTP
//! 408/425/429/5xx) is transient; a refusal (SMTP 5xx, other HTTP 4xx) is
//! permanent and fails the delivery at once.

pub mod payload;

use std::time::Duration;

use hmac::{Hmac, Mac};
use hyperfleet_core::{
    operation::{ErrorClass, JobFailure},
    settings::{AlertSettings, Channel, Email, Secret, SmtpSecurity, Transport},
};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use sha2::Sha256;

pub use payload::Message;

/// Everything a worker needs to deliver notifications.
#[derive(Debug)]
pub struct Notifier {
    pub settings: AlertSettings,
    pub public_url: String,
    http: reqwest::Client,
}

fn transient(code: &str, message: impl Into<String>) -> JobFailure {
    JobFailure::new(ErrorClass::Transient, code, message)
}

fn permanent(code: &str, message: impl Into<String>) -> JobFailure {
    JobFailure::new(ErrorClass::Permanent, code, message)
}

/// `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Notifier {
    pub fn new(settings: AlertSettings, public_url: String) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hyperfleet/", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects is misconfigured; following it could leak the payload elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { settings, public_url, http }
    }

    /// One delivery attempt; `Ok` carries what the peer answered.
    #[tracing::instrument(skip(self, channel, message), fields(channel = channel.name, event = message.event.as_str()))]
    pub async fn send(&self, channel: &Channel, message: &Message) -> Result<String, JobFailure> {
        // The one timeout of an attempt, whatever the transport is doing.
        let limit = Duration::from_secs(channel.timeout_s);
        let attempt = async {
            let name = &channel.name;
            match &channel.transport {
                Transport::Email(email) => self.send_email(name, email, message).await,
                Transport::Slack(h) => self.post(name, &h.url, &payload::slack(message), message, None).await,
                Transport::Discord(h) => self.post(name, &h.url, &payload::discord(message), message, None).await,
                Transport::Teams(h) => self.post(name, &h.url, &payload::teams(message), message, None).await,
                Transport::Webhook(h) => {
                    let secret = match &h.secret {
                        Some(s) => Some(s.reveal().map_err(|e| permanent("secret_unavailable", e))?),
                        None => None,
                    };
                    self.post(name, &h.url, &payload::webhook(message), message, secret).await
                }
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(transient("timeout", format!("no answer from channel {} within {limit:?}", channel.name))),
        }
    }

    async fn post(
        &self,
        channel: &str,
        url: &Secret,
        body: &serde_json::Value,
        message: &Message,
        secret: Option<String>,
    ) -> Result<String, JobFailure> {
        let url = url.reveal().map_err(|e| permanent("secret_unavailable", e))?;
        let bytes = serde_json::to_vec(body).map_err(|e| permanent("payload", e.to_string()))?;
        let mut request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hyperfleet-Event", message.event.as_str())
            .header("X-Hyperfleet-Delivery", message.notification_id.to_string());
        if let Some(secret) = secret {
            let timestamp = message.sent_at.0.timestamp().to_string();
            request = request
                .header("X-Hyperfleet-Signature", signature(secret.as_bytes(), &timestamp, &bytes))
                .header("X-Hyperfleet-Timestamp", timestamp);
        }
        // The URL is a secret: errors name the channel, never the URL. (Timeouts are `send`'s.)
        let response = request.body(bytes).send().await.map_err(|e| {
            let what = if e.is_connect() { "connection failed" } else { "request failed" };
            transient("unreachable", format!("channel {channel}: {what}"))
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let detail = format!("HTTP {}{}", status.as_u16(), excerpt(&text));
        match status.as_u16() {
            200..=299 => Ok(detail),
            408 | 425 | 429 | 500..=599 => Err(transient(&format!("http_{}", status.as_u16()), detail)),
            _ => Err(permanent(&format!("http_{}", status.as_u16()), detail)),
        }
    }

    async fn send_email(&self, channel: &str, email: &Email, m: &Message) -> Result<String, JobFailure> {
        let invalid = |e: String| permanent("invalid_channel", e);
        let from: Mailbox = email.from.parse().map_err(|e| invalid(format!("from: {e}")))?;
        let mut builder = lettre::Message::builder()
            .from(from)
            .subject(payload::email_subject(m))
            .message_id(Some(format!("<{}@hyperfleet>", m.notification_id)));
        for to in &email.to {
            builder = builder.to(to.parse().map_err(|e| invalid(format!("to `{to}`: {e}")))?);
        }
        let letter = builder
            .header(ContentType::TEXT_PLAIN)
            .body(payload::email_body(m))
            .map_err(|e| invalid(format!("cannot build the message: {e}")))?;
        let host = email.smtp_host.as_str();
        let transport = match email.smtp_security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| invalid(format!("TLS setup: {e}")))?,
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| invalid(format!("TLS setup: {e}")))?
            }
        };
        let mut transport = transport.port(email.smtp_port());
        if let Some(c) = &email.credentials {
            let password = c.password.reveal().map_err(|e| permanent("secret_unavailable", e))?;
            transport = transport.credentials(Credentials::new(c.username.clone(), password));
        }
        let response = transport.build().send(letter).await.map_err(|e| {
            let message = format!("channel {channel}: SMTP: {e}");
            if e.is_permanent() { permanent("smtp_rejected", message) } else { transient("smtp_unavailable", message) }
        })?;
        let code = response.code().to_string();
        let text: Vec<&str> = response.message().collect();
        Ok(format!("SMTP {code} {}", text.join(" ")).trim_end().to_owned())
    }
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() { String::new() } else { format!(": {}", payload::truncate(body, 200)) }
}
