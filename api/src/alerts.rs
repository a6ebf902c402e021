//! `/api/v1/alerts` and `/api/v1/channels`: the kept alert history, manual
//! alerts, acknowledgements, and test notifications.

use hyperfleet_core::{
    AlertEventId, AlertId, Error,
    alert::{AlertSource, AlertStatus, NewAlert, Notification, Severity},
    store::AlertFilter,
};
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::alert_views::*;
use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
    operations::page_limit,
    views::AttemptView,
};

pub struct AlertsApi {
    pub state: AppState,
}

impl AlertsApi {
    async fn notification_page(
        &self,
        id: AlertId,
        after: Option<hyperfleet_core::NotificationId>,
        limit: u32,
    ) -> hyperfleet_core::Result<NotificationPageView> {
        let page = self.state.app.alert_notifications(id, after, limit).await?;
        let mut items = Vec::new();
        for n in page.items {
            items.push(self.notification_view(n).await?);
        }
        Ok(NotificationPageView { items, next_cursor: page.next_cursor.map(|c| c.to_string()) })
    }

    async fn notification_view(&self, n: Notification) -> hyperfleet_core::Result<NotificationView> {
        let delivery = match n.operation_id {
            Some(id) => match self.state.app.operation(id).await {
                Ok(op) => Some(DeliveryView {
                    operation: op.into(),
                    attempts: self.state.app.attempts(id).await?.into_iter().map(AttemptView::from).collect(),
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
            event: n.event,
            status: n.status,
            reason: n.reason,
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
        status: Query<Option<AlertStatus>>,
        severity: Query<Option<Severity>>,
        source: Query<Option<AlertSource>>,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
        /// Last seen at or after this time (RFC 3339).
        since: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// First seen before this time (RFC 3339).
        until: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// Page size, 1-500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<uuid::Uuid>>,
    ) -> ApiResult<Json<AlertPageView>> {
        let limit = page_limit(limit.0)?;
        let filter = AlertFilter {
            status: status.0,
            severity: severity.0,
            source: source.0,
            host: host.0,
            since: since.0.map(hyperfleet_core::Timestamp),
            until: until.0.map(hyperfleet_core::Timestamp),
            cursor: cursor.0.map(AlertId),
            limit,
        };
        let page = self.state.app.alerts(&filter).await?;
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
            host: r.host.map(String::from),
            severity: r.severity,
            title: r.title.into(),
            message: r.message.into(),
            labels: r.labels.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into())).collect(),
            dedup_key: r.dedup_key.map(String::from),
            operation_id: None,
            exclude_channel: None,
            actor: auth.0.name.clone(),
        };
        let (alert, event) = self.state.app.raise_alert(&new).await?;
        if event == hyperfleet_core::alert::EventKind::Fired {
            let location = format!("/api/v1/alerts/{}", alert.id);
            Ok(AlertRaised::Created(Json(alert.into()), location))
        } else {
            Ok(AlertRaised::Updated(Json(alert.into())))
        }
    }

    /// Get an alert with its events, notifications (sent and suppressed) and deliveries with every attempt.
    #[oai(path = "/alerts/:id", method = "get", operation_id = "alert_get")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        id: Path<uuid::Uuid>,
        /// Events and notifications shown, 1-500 each (default 50); the rest by cursor.
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<AlertDetailView>> {
        let id = AlertId(id.0);
        let limit = page_limit(limit.0)?;
        let store = &self.state.app;
        let alert = store.alert(id).await?;
        let notifications = self.notification_page(id, None, limit).await?;
        let events = store.alert_events(id, None, limit).await?;
        Ok(Json(AlertDetailView {
            alert: alert.into(),
            events: events.items.into_iter().map(AlertEventView::from).collect(),
            events_next_cursor: events.next_cursor.map(|c| c.to_string()),
            notifications: notifications.items,
            notifications_next_cursor: notifications.next_cursor,
            suppressed: store
                .suppressed_counts(id)
                .await?
                .into_iter()
                .map(|(reason, count)| SuppressedCount { reason, count })
                .collect(),
        }))
    }

    /// An alert's history, oldest first, a page at a time.
    #[oai(path = "/alerts/:id/events", method = "get", operation_id = "alert_event_list")]
    async fn events(
        &self,
        _auth: ViewerAuth,
        id: Path<uuid::Uuid>,
        /// Page size, 1-500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<uuid::Uuid>>,
    ) -> ApiResult<Json<AlertEventPageView>> {
        let id = AlertId(id.0);
        self.state.app.alert(id).await?;
        let page = self.state.app.alert_events(id, cursor.0.map(AlertEventId), page_limit(limit.0)?).await?;
        Ok(Json(AlertEventPageView {
            items: page.items.into_iter().map(AlertEventView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// An alert's notifications (sent and suppressed, with their deliveries), oldest first, a page at a time.
    #[oai(path = "/alerts/:id/notifications", method = "get", operation_id = "alert_notification_list")]
    async fn notifications(
        &self,
        _auth: ViewerAuth,
        id: Path<uuid::Uuid>,
        /// Page size, 1-500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<uuid::Uuid>>,
    ) -> ApiResult<Json<NotificationPageView>> {
        let id = AlertId(id.0);
        self.state.app.alert(id).await?;
        let after = cursor.0.map(hyperfleet_core::NotificationId);
        Ok(Json(self.notification_page(id, after, page_limit(limit.0)?).await?))
    }

    /// Acknowledge a firing alert: it stops repeating until it resolves. 409 `alert_not_firing` once resolved.
    #[oai(path = "/alerts/:id/ack", method = "post", operation_id = "alert_ack")]
    async fn ack(&self, auth: OperatorAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<AlertView>> {
        let id = AlertId(id.0);
        Ok(Json(self.state.app.acknowledge_alert(id, &auth.0.name).await?.into()))
    }

    /// Resolve a firing alert by hand (channels that heard it fire are told). Resolving twice changes nothing.
    #[oai(path = "/alerts/:id/resolve", method = "post", operation_id = "alert_resolve")]
    async fn resolve(&self, auth: OperatorAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<AlertView>> {
        let id = AlertId(id.0);
        Ok(Json(self.state.app.resolve_alert(id, &auth.0.name).await?.into()))
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
            .app
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
            let stats = self.state.app.channel_stats(&c.name).await?;
            let mut config = serde_json::to_value(c).unwrap_or_default();
            if let Some(url) = config.get_mut("url").filter(|u| u.is_string()) {
                *url = serde_json::Value::String(c.target());
            }
            items.push(ChannelView {
                name: c.name.clone(),
                kind: c.kind(),
                min_severity: c.min_severity,
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
