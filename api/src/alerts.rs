//! `/api/v1/alerts` and `/api/v1/channels`: the kept alert history, manual
//! alerts, acknowledgements, and test notifications.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hyperfleet_core::{
    AlertId, Error,
    alert::{Alert, AlertEvent, AlertSource, AlertStatus, NewAlert, Notification, Severity},
    store::AlertFilter,
};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
    operations::parse_time,
    views::{AttemptView, OperationView},
};

pub struct AlertsApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
pub struct AlertView {
    pub id: uuid::Uuid,
    /// Alerts with the same dedup key are one alert while it fires.
    pub dedup_key: String,
    /// `health`, `operation`, `backup`, `fleet` or `manual`.
    pub source: String,
    #[oai(skip_serializing_if_is_none)]
    pub host: Option<String>,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    pub title: String,
    pub message: String,
    pub labels: BTreeMap<String, String>,
    /// `firing` or `resolved`.
    pub status: String,
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
            source: a.source.as_str().into(),
            host: a.host,
            severity: a.severity.as_str().into(),
            title: a.title,
            message: a.message,
            labels: a.labels,
            status: a.status.as_str().into(),
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
    /// `fired`, `repeated`, `escalated`, `resolved` or `acknowledged`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub severity: String,
    pub message: String,
    /// A token name, or `hyperfleet` for the system's own sources.
    pub actor: String,
    #[oai(skip_serializing_if_is_none)]
    pub operation_id: Option<uuid::Uuid>,
}

impl From<AlertEvent> for AlertEventView {
    fn from(e: AlertEvent) -> Self {
        Self {
            kind: e.kind.as_str().into(),
            at: e.at.0,
            severity: e.severity.as_str().into(),
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
    /// `firing`, `resolved` or `test`.
    pub event: String,
    /// `pending` (being delivered), `delivered`, `failed` (every attempt failed) or `suppressed`.
    pub status: String,
    /// Why it was suppressed: `cooldown`, `silenced`, `acknowledged`, `below_severity` or `unmatched`.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
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
    pub reason: String,
    pub count: i64,
}

/// An alert with its whole history.
#[derive(Debug, Clone, Object)]
pub struct AlertDetailView {
    pub alert: AlertView,
    /// Oldest first.
    pub events: Vec<AlertEventView>,
    /// Oldest first, sent and suppressed.
    pub notifications: Vec<NotificationView>,
    pub suppressed: Vec<SuppressedCount>,
}

/// A manual alert (the seed's `alert_manager.sh` call, as an API).
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct AlertRequest {
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// 1-512 characters.
    pub title: String,
    /// Up to 16384 characters.
    pub message: String,
    pub host: Option<String>,
    /// Up to 32 labels; names are 1-64 of `A-Z a-z 0-9 _ . -`.
    pub labels: Option<BTreeMap<String, String>>,
    /// Default: derived from source, host and title.
    pub dedup_key: Option<String>,
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
    pub channel: Option<String>,
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
    /// `email`, `slack`, `discord`, `teams` or `webhook`.
    #[oai(rename = "type")]
    pub kind: String,
    pub min_severity: String,
    pub send_resolved: bool,
    pub timeout_s: u64,
    /// Where it sends: `smtp://host:port → recipients`, or the webhook's origin (its path is a secret).
    pub target: String,
    /// The channel's settings as configured, secrets shown as `***`.
    pub config: serde_json::Value,
    /// Status of the last delivery: `pending`, `delivered` or `failed`.
    #[oai(skip_serializing_if_is_none)]
    pub last_status: Option<String>,
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

fn cursor_of(c: Option<String>) -> Result<Option<AlertId>, Error> {
    c.as_deref()
        .map(|c| {
            AlertId::parse(c)
                .map_err(|_| Error::invalid("invalid_cursor", "`cursor` is not a cursor this API returned"))
        })
        .transpose()
}

impl AlertsApi {
    async fn notification_view(&self, n: Notification) -> hyperfleet_core::Result<NotificationView> {
        let delivery = match n.operation_id {
            Some(id) => match self.state.store.operation(id).await {
                Ok(op) => Some(DeliveryView {
                    operation: op.into(),
                    attempts: self.state.store.attempts(id).await?.into_iter().map(AttemptView::from).collect(),
                }),
                // Pruned from the ledger after its retention; the notification keeps the outcome.
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(NotificationView {
            id: n.id.0,
            channel: n.channel,
            event: n.event.as_str().into(),
            status: n.status.as_str().into(),
            reason: n.reason.map(|r| r.as_str().into()),
            silence_id: n.silence_id.map(|s| s.0),
            created_at: n.created_at.0,
            delivered_at: n.delivered_at.map(|t| t.0),
            detail: n.detail,
            delivery,
        })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Alerts")]
impl AlertsApi {
    /// List alerts, newest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/alerts", method = "get", operation_id = "alert_list")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        /// `firing` or `resolved`.
        status: Query<Option<String>>,
        /// `critical`, `warning` or `info`.
        severity: Query<Option<String>>,
        /// `health`, `operation`, `backup`, `fleet` or `manual`.
        source: Query<Option<String>>,
        host: Query<Option<String>>,
        /// Last seen at or after this time (RFC 3339).
        since: Query<Option<String>>,
        /// First seen before this time (RFC 3339).
        until: Query<Option<String>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AlertPageView>> {
        let limit = limit.0.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(Error::invalid("invalid_limit", "`limit` must be 1-500").into());
        }
        let filter = AlertFilter {
            status: status.0.as_deref().map(AlertStatus::parse).transpose()?,
            severity: severity.0.as_deref().map(Severity::parse).transpose()?,
            source: source.0.as_deref().map(AlertSource::parse).transpose()?,
            host: host.0,
            since: parse_time("since", since.0)?,
            until: parse_time("until", until.0)?,
            cursor: cursor_of(cursor.0)?,
            limit,
        };
        let page = self.state.store.alerts(&filter).await?;
        Ok(Json(AlertPageView {
            items: page.items.into_iter().map(AlertView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// Raise a manual alert. A firing alert with the same dedup key gains an occurrence instead.
    #[oai(path = "/alerts", method = "post", operation_id = "alert_create")]
    async fn create(&self, auth: OperatorAuth, body: Json<AlertRequest>) -> ApiResult<AlertRaised> {
        let r = body.0;
        let new = NewAlert {
            source: AlertSource::Manual,
            host: r.host,
            severity: Severity::parse(&r.severity)?,
            title: r.title,
            message: r.message,
            labels: r.labels.unwrap_or_default(),
            dedup_key: r.dedup_key,
            operation_id: None,
            exclude_channel: None,
            actor: auth.0.name.clone(),
        };
        let (alert, event) = self.state.store.raise_alert(&new).await?;
        if event == hyperfleet_core::alert::EventKind::Fired {
            let location = format!("/api/v1/alerts/{}", alert.id);
            Ok(AlertRaised::Created(Json(alert.into()), location))
        } else {
            Ok(AlertRaised::Updated(Json(alert.into())))
        }
    }

    /// Get an alert with its events, notifications (sent and suppressed) and deliveries with every attempt.
    #[oai(path = "/alerts/:id", method = "get", operation_id = "alert_get")]
    async fn get(&self, _auth: ViewerAuth, id: Path<String>) -> ApiResult<Json<AlertDetailView>> {
        let id = AlertId::parse(&id)?;
        let store = &self.state.store;
        let alert = store.alert(id).await?;
        let mut notifications = Vec::new();
        for n in store.alert_notifications(id).await? {
            notifications.push(self.notification_view(n).await?);
        }
        Ok(Json(AlertDetailView {
            alert: alert.into(),
            events: store.alert_events(id).await?.into_iter().map(AlertEventView::from).collect(),
            notifications,
            suppressed: store
                .suppressed_counts(id)
                .await?
                .into_iter()
                .map(|(reason, count)| SuppressedCount { reason, count })
                .collect(),
        }))
    }

    /// Acknowledge a firing alert: it stops repeating until it resolves. 409 `alert_not_firing` once resolved.
    #[oai(path = "/alerts/:id/ack", method = "post", operation_id = "alert_ack")]
    async fn ack(&self, auth: OperatorAuth, id: Path<String>) -> ApiResult<Json<AlertView>> {
        let id = AlertId::parse(&id)?;
        Ok(Json(self.state.store.acknowledge_alert(id, &auth.0.name).await?.into()))
    }

    /// Resolve a firing alert by hand (channels that heard it fire are told). Resolving twice changes nothing.
    #[oai(path = "/alerts/:id/resolve", method = "post", operation_id = "alert_resolve")]
    async fn resolve(&self, auth: OperatorAuth, id: Path<String>) -> ApiResult<Json<AlertView>> {
        let id = AlertId::parse(&id)?;
        Ok(Json(self.state.store.resolve_alert(id, &auth.0.name).await?.into()))
    }

    /// Send a test notification through one channel or all of them (event `test`; no alert, no policy).
    #[oai(path = "/alerts/test", method = "post", operation_id = "alert_test")]
    async fn test(&self, auth: OperatorAuth, body: Json<TestRequest>) -> ApiResult<TestQueued> {
        let channels: Vec<&str> = match &body.0.channel {
            Some(name) => {
                let c = self.state.alerts.channel(name).ok_or_else(|| {
                    Error::not_found("channel_not_found", format!("channel `{name}` (see GET /api/v1/channels)"))
                })?;
                vec![c.name.as_str()]
            }
            None => self.state.alerts.channels.iter().map(|c| c.name.as_str()).collect(),
        };
        if channels.is_empty() {
            return Err(Error::conflict("no_channels", "no alert channels are configured ([[alerts.channels]])").into());
        }
        let queued = self
            .state
            .store
            .test_notifications(&channels, &auth.0.name, self.state.alerts.delivery_max_attempts as i32)
            .await?;
        let items = queued
            .into_iter()
            .map(|(channel, n, op)| TestDelivery { channel, notification_id: n.0, operation_id: op.0 })
            .collect();
        Ok(TestQueued::Accepted(Json(TestAccepted { items })))
    }

    /// The configured channels (secrets redacted) with their last delivery.
    #[oai(path = "/channels", method = "get", operation_id = "channel_list")]
    async fn channels(&self, _auth: ViewerAuth) -> ApiResult<Json<ChannelListView>> {
        let mut items = Vec::new();
        for c in &self.state.alerts.channels {
            let stats = self.state.store.channel_stats(&c.name).await?;
            let mut config = serde_json::to_value(c).unwrap_or_default();
            if let Some(url) = config.get_mut("url").filter(|u| u.is_string()) {
                *url = serde_json::Value::String(c.target());
            }
            items.push(ChannelView {
                name: c.name.clone(),
                kind: c.kind.as_str().into(),
                min_severity: c.min_severity.as_str().into(),
                send_resolved: c.send_resolved(),
                timeout_s: c.timeout_s,
                target: c.target(),
                config,
                last_status: stats.last_status,
                last_at: stats.last_at.map(|t| t.0),
                last_detail: stats.last_detail,
                delivered: stats.delivered,
                failed: stats.failed,
                pending: stats.pending,
                suppressed: stats.suppressed,
            });
        }
        Ok(Json(ChannelListView { items }))
    }
}
