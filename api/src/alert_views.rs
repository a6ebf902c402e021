//! What the alerts API sends and takes: OpenAPI objects mapped from core's
//! alert types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hyperfleet_core::alert::{
    Alert, AlertEvent, AlertSource, AlertStatus, ChannelKind, EventKind, NotificationStatus, NotifyEvent, Severity,
    SuppressReason,
};
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::views::{AttemptView, OperationView};

#[derive(Debug, Clone, Object)]
pub struct AlertView {
    pub id: uuid::Uuid,
    /// Alerts with the same dedup key are one alert while it fires.
    pub dedup_key: String,
    pub source: AlertSource,
    #[oai(skip_serializing_if_is_none)]
    pub host: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub labels: BTreeMap<String, String>,
    pub status: AlertStatus,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// How many times a source observed it.
    pub occurrences: i64,
    #[oai(skip_serializing_if_is_none)]
    pub acknowledged_by: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The operation it is about (an operation that failed for good).
    #[oai(skip_serializing_if_is_none)]
    pub operation_id: Option<uuid::Uuid>,
    pub created_by: String,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id.0,
            dedup_key: a.dedup_key,
            source: a.source,
            host: a.host,
            severity: a.severity,
            title: a.title,
            message: a.message,
            labels: a.labels,
            status: a.status,
            first_seen: a.first_seen.0,
            last_seen: a.last_seen.0,
            resolved_at: a.resolved_at.map(|t| t.0),
            occurrences: a.occurrences,
            acknowledged_by: a.acknowledged_by,
            acknowledged_at: a.acknowledged_at.map(|t| t.0),
            operation_id: a.operation_id.map(|i| i.0),
            created_by: a.created_by,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct AlertPageView {
    pub items: Vec<AlertView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// An entry of an alert's history.
#[derive(Debug, Clone, Object)]
pub struct AlertEventView {
    /// Time-ordered: also the cursor of `GET /alerts/{id}/events`.
    pub id: uuid::Uuid,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub severity: Severity,
    pub message: String,
    /// A token name, or `hyperfleet` for the system's own sources.
    pub actor: String,
    #[oai(skip_serializing_if_is_none)]
    pub operation_id: Option<uuid::Uuid>,
}

impl From<AlertEvent> for AlertEventView {
    fn from(e: AlertEvent) -> Self {
        Self {
            id: e.id.0,
            kind: e.kind,
            at: e.at.0,
            severity: e.severity,
            message: e.message,
            actor: e.actor,
            operation_id: e.operation_id.map(|i| i.0),
        }
    }
}

/// One notification of an event to one channel.
#[derive(Debug, Clone, Object)]
pub struct NotificationView {
    pub id: uuid::Uuid,
    pub channel: String,
    pub event: NotifyEvent,
    // `pending` (being delivered), `delivered`, `failed` (every attempt failed) or `suppressed`.
    pub status: NotificationStatus,
    // Why it was suppressed.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<SuppressReason>,
    #[oai(skip_serializing_if_is_none)]
    pub silence_id: Option<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// What the peer answered (`HTTP 200`, `SMTP 250 …`), or the final error.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// The `alert.deliver` operation, with every attempt.
    #[oai(skip_serializing_if_is_none)]
    pub delivery: Option<DeliveryView>,
}

#[derive(Debug, Clone, Object)]
pub struct DeliveryView {
    pub operation: OperationView,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Clone, Object)]
pub struct SuppressedCount {
    pub reason: SuppressReason,
    pub count: i64,
}

/// An alert with its whole history.
#[derive(Debug, Clone, Object)]
pub struct AlertDetailView {
    pub alert: AlertView,
    /// The first page of its history, oldest first.
    pub events: Vec<AlertEventView>,
    /// Set when more events follow: `GET /alerts/{id}/events?cursor=…`.
    #[oai(skip_serializing_if_is_none)]
    pub events_next_cursor: Option<String>,
    /// The first page of its notifications, oldest first, sent and suppressed.
    pub notifications: Vec<NotificationView>,
    /// Set when more notifications follow: `GET /alerts/{id}/notifications?cursor=…`.
    #[oai(skip_serializing_if_is_none)]
    pub notifications_next_cursor: Option<String>,
    /// Suppressed notifications counted per reason (over all of them, not a page).
    pub suppressed: Vec<SuppressedCount>,
}

/// A page of an alert's history, oldest first.
#[derive(Debug, Clone, Object)]
pub struct AlertEventPageView {
    pub items: Vec<AlertEventView>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A page of an alert's notifications, oldest first.
#[derive(Debug, Clone, Object)]
pub struct NotificationPageView {
    pub items: Vec<NotificationView>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A manual alert (the seed's `alert_manager.sh` call, as an API).
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct AlertRequest {
    pub severity: Severity,
    /// 1-512 characters (all blank is a 422 `invalid_title`).
    #[oai(validator(min_length = 1, max_length = 512))]
    pub title: crate::text::Text,
    /// Up to 16384 characters.
    #[oai(validator(max_length = 16384))]
    pub message: crate::text::Text,
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub host: Option<crate::text::Text>,
    /// Up to 32 labels; names are 1-64 of `A-Z a-z 0-9 _ . -` starting with a
    /// letter or `_`, not `source`, `host`, `severity` or `title`; values up to
    /// 256 characters (a name or value outside that is a 422 `invalid_labels`).
    #[oai(validator(max_properties = 32))]
    pub labels: Option<BTreeMap<String, crate::text::Text>>,
    /// Default: derived from source, host and title. 1-512 characters without
    /// control characters (all blank is a 422 `invalid_dedup_key`).
    #[oai(validator(min_length = 1, max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"))]
    pub dedup_key: Option<crate::text::Text>,
}

#[derive(Debug, ApiResponse)]
pub enum AlertRaised {
    /// A new alert fires.
    #[oai(status = 201)]
    Created(Json<AlertView>, #[oai(header = "Location")] String),
    /// One more occurrence of the firing alert with this dedup key.
    #[oai(status = 200)]
    Updated(Json<AlertView>),
}

#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct TestRequest {
    /// One channel; default: every configured channel.
    pub channel: Option<crate::text::Text>,
}

#[derive(Debug, Clone, Object)]
pub struct TestDelivery {
    pub channel: String,
    pub notification_id: uuid::Uuid,
    /// The `alert.deliver` operation; follow it at `/api/v1/operations/{id}`.
    pub operation_id: uuid::Uuid,
}

#[derive(Debug, Clone, Object)]
pub struct TestAccepted {
    pub items: Vec<TestDelivery>,
}

#[derive(Debug, ApiResponse)]
pub enum TestQueued {
    /// One delivery per channel, queued.
    #[oai(status = 202)]
    Accepted(Json<TestAccepted>),
}

#[derive(Debug, Clone, Object)]
pub struct ChannelView {
    pub name: String,
    #[oai(rename = "type")]
    pub kind: ChannelKind,
    pub min_severity: Severity,
    pub send_resolved: bool,
    pub timeout_s: u64,
    /// Where it sends: `smtp://host:port → recipients`, or the webhook's origin (its path is a secret).
    pub target: String,
    /// The channel's settings as configured, secrets shown as `***`.
    pub config: serde_json::Value,
    // Status of the last delivery.
    #[oai(skip_serializing_if_is_none)]
    pub last_status: Option<NotificationStatus>,
    #[oai(skip_serializing_if_is_none)]
    pub last_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub last_detail: Option<String>,
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
    pub suppressed: i64,
}

#[derive(Debug, Clone, Object)]
pub struct ChannelListView {
    pub items: Vec<ChannelView>,
}
