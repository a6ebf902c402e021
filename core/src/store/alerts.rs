//! Alerts as stored: raising and resolving them (also inside another
//! transaction, so that an operation failing for good and its alert are one
//! write), acknowledging, and reading them back with their history.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, types::Json};

pub(crate) use super::alert_tx::AlertTx;
use super::{Page, Store, alert_tx::NewEvent, read_db, with_db};
use crate::{
    AlertEventId, AlertId, Error, NotificationId, OperationId, Result, SilenceId, Timestamp,
    alert::{
        Alert, AlertEvent, AlertSource, AlertStatus, EventKind, NewAlert, Notification, NotificationStatus,
        NotifyEvent, Severity, SuppressReason,
    },
};

pub(crate) const ALERT_COLUMNS: &str = "id, dedup_key, source, host, severity, title, message, labels, status, \
    first_seen, last_seen, resolved_at, occurrences, acknowledged_by, acknowledged_at, operation_id, \
    exclude_channel, created_by";

pub(crate) const NOTIFICATION_COLUMNS: &str = "id, alert_id, event_id, channel, event, status, reason, silence_id, \
    operation_id, created_at, delivered_at, detail";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: AlertId,
    dedup_key: String,
    source: String,
    host: Option<String>,
    severity: String,
    title: String,
    message: String,
    labels: Json<BTreeMap<String, String>>,
    status: String,
    first_seen: Timestamp,
    last_seen: Timestamp,
    resolved_at: Option<Timestamp>,
    occurrences: i64,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<Timestamp>,
    operation_id: Option<OperationId>,
    exclude_channel: Option<String>,
    created_by: String,
}

impl TryFrom<AlertRow> for Alert {
    type Error = Error;

    fn try_from(r: AlertRow) -> Result<Self> {
        Ok(Alert {
            id: r.id,
            dedup_key: r.dedup_key,
            source: AlertSource::parse(&r.source)?,
            host: r.host,
            severity: Severity::parse(&r.severity)?,
            title: r.title,
            message: r.message,
            labels: r.labels.0,
            status: AlertStatus::parse(&r.status)?,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            resolved_at: r.resolved_at,
            occurrences: r.occurrences,
            acknowledged_by: r.acknowledged_by,
            acknowledged_at: r.acknowledged_at,
            operation_id: r.operation_id,
            created_by: r.created_by,
            exclude_channel: r.exclude_channel,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NotificationRow {
    id: NotificationId,
    alert_id: Option<AlertId>,
    event_id: Option<AlertEventId>,
    channel: String,
    event: String,
    status: String,
    reason: Option<String>,
    silence_id: Option<SilenceId>,
    operation_id: Option<OperationId>,
    created_at: Timestamp,
    delivered_at: Option<Timestamp>,
    detail: Option<String>,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = Error;

    fn try_from(r: NotificationRow) -> Result<Self> {
        Ok(Notification {
            id: r.id,
            alert_id: r.alert_id,
            event_id: r.event_id,
            channel: r.channel,
            event: NotifyEvent::parse(&r.event)?,
            status: NotificationStatus::parse(&r.status)?,
            reason: r.reason.as_deref().map(SuppressReason::parse).transpose()?,
            silence_id: r.silence_id,
            operation_id: r.operation_id,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
            detail: r.detail,
        })
    }
}

type EventRow = (AlertEventId, AlertId, String, Timestamp, String, String, String, Option<OperationId>);

fn event_of(r: EventRow) -> Result<AlertEvent> {
    Ok(AlertEvent {
        id: r.0,
        alert_id: r.1,
        kind: EventKind::parse(&r.2)?,
        at: r.3,
        severity: Severity::parse(&r.4)?,
        message: r.5,
        actor: r.6,
        operation_id: r.7,
    })
}

/// Filters of the alert list; newest first.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub severity: Option<Severity>,
    pub source: Option<AlertSource>,
    pub host: Option<String>,
    /// Alerts last seen at or after this time.
    pub since: Option<Timestamp>,
    /// Alerts first seen before this time.
    pub until: Option<Timestamp>,
    /// Alerts older than this one (the previous page's last id).
    pub cursor: Option<AlertId>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct AlertPage {
    pub items: Vec<Alert>,
    pub next_cursor: Option<AlertId>,
}

impl Store {
    /// Raises (or re-observes) an alert and returns it as stored now.
    #[tracing::instrument(skip(self, new), fields(source = new.source.as_str(), severity = new.severity.as_str()))]
    pub async fn raise_alert(&self, new: &NewAlert) -> Result<(Alert, EventKind)> {
        new.validate()?;
        let now = self.now();
        let (id, kind) = with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let raised = tx.raise_alert(new, now).await?;
            tx.commit().await?;
            raised
        });
        self.wakes.notify(crate::queue::ALERTS);
        Ok((self.alert(id).await?, kind))
    }

    /// Resolves the firing alert with `dedup_key`; `None` when none fires.
    pub async fn resolve_alert_key(&self, dedup_key: &str, actor: &str, message: &str) -> Result<Option<AlertId>> {
        let now = self.now();
        let id = with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let id = tx.resolve_alert(dedup_key, actor, message, now).await?;
            tx.commit().await?;
            id
        });
        if id.is_some() {
            self.wakes.notify(crate::queue::ALERTS);
        }
        Ok(id)
    }

    /// Resolves a firing alert by hand; resolving a resolved alert changes nothing.
    pub async fn resolve_alert(&self, id: AlertId, actor: &str) -> Result<Alert> {
        let alert = self.alert(id).await?;
        if alert.status != AlertStatus::Firing {
            return Ok(alert);
        }
        self.resolve_alert_key(&alert.dedup_key, actor, &format!("resolved by {actor}")).await?;
        self.alert(id).await
    }

    /// Acknowledges a firing alert: it stops repeating until it resolves.
    /// Acknowledging twice keeps the first acknowledgement.
    pub async fn acknowledge_alert(&self, id: AlertId, actor: &str) -> Result<Alert> {
        let alert = self.alert(id).await?;
        if alert.status != AlertStatus::Firing {
            return Err(Error::conflict("alert_not_firing", format!("alert {id} is resolved; nothing to acknowledge")));
        }
        if alert.acknowledged_at.is_some() {
            return Ok(alert);
        }
        let now = self.now();
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query::<Db>(
                "UPDATE alerts SET acknowledged_by = $2, acknowledged_at = $3 \
                 WHERE id = $1 AND status = 'firing' AND acknowledged_at IS NULL",
            )
            .bind(id)
            .bind(actor)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 1 {
                let message = format!("acknowledged by {actor}");
                // Acknowledgements notify nobody: the router has nothing to decide.
                let event = NewEvent {
                    kind: EventKind::Acknowledged,
                    at: now,
                    severity: alert.severity,
                    message: &message,
                    actor,
                    operation: None,
                    routed: true,
                };
                tx.insert_alert_event(id, event).await?;
            }
            tx.commit().await?;
        });
        self.alert(id).await
    }

    pub async fn alert(&self, id: AlertId) -> Result<Alert> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        let row: Option<AlertRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, AlertRow>(AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await
        })?;
        row.ok_or_else(|| Error::not_found("alert_not_found", format!("alert {id}")))?.try_into()
    }

    pub async fn alerts(&self, f: &AlertFilter) -> Result<AlertPage> {
        let limit = f.limit.clamp(1, 500);
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR severity = $2) \
             AND ($3 IS NULL OR source = $3) AND ($4 IS NULL OR host = $4) AND ($5 IS NULL OR last_seen >= $5) \
             AND ($6 IS NULL OR first_seen < $6) AND ($7 IS NULL OR id < $7) ORDER BY id DESC LIMIT {}",
            limit + 1
        );
        let rows: Vec<AlertRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, AlertRow>(AssertSqlSafe(sql))
                .bind(f.status.map(AlertStatus::as_str))
                .bind(f.severity.map(Severity::as_str))
                .bind(f.source.map(AlertSource::as_str))
                .bind(&f.host)
                .bind(f.since)
                .bind(f.until)
                .bind(f.cursor)
                .fetch_all(pool)
                .await
        })?;
        let mut items: Vec<Alert> = rows.into_iter().map(Alert::try_from).collect::<Result<_>>()?;
        let next_cursor = (items.len() > limit as usize).then(|| {
            items.truncate(limit as usize);
            items.last().map(|a| a.id)
        });
        Ok(AlertPage { items, next_cursor: next_cursor.flatten() })
    }

    /// A page of the alert's history, oldest first: events after `after`.
    pub async fn alert_events(
        &self,
        id: AlertId,
        after: Option<AlertEventId>,
        limit: u32,
    ) -> Result<Page<AlertEvent, AlertEventId>> {
        let rows: Vec<EventRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, EventRow>(
                "SELECT id, alert_id, kind, at, severity, message, actor, operation_id FROM alert_events \
                 WHERE alert_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
            )
            .bind(id)
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await
        })?;
        let items = rows.into_iter().map(event_of).collect::<Result<Vec<_>>>()?;
        Ok(Page::of(items, limit, |e| e.id))
    }

    /// A page of the alert's notifications, sent or suppressed, oldest first: those after `after`.
    pub async fn alert_notifications(
        &self,
        id: AlertId,
        after: Option<NotificationId>,
        limit: u32,
    ) -> Result<Page<Notification, NotificationId>> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM alert_notifications WHERE alert_id = $1 AND ($2 IS NULL OR id > $2) \
             ORDER BY id LIMIT $3"
        );
        let rows: Vec<NotificationRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, NotificationRow>(AssertSqlSafe(sql))
                .bind(id)
                .bind(after)
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await
        })?;
        let items = rows.into_iter().map(Notification::try_from).collect::<Result<Vec<_>>>()?;
        Ok(Page::of(items, limit, |n| n.id))
    }

    pub async fn notification(&self, id: NotificationId) -> Result<Notification> {
        let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM alert_notifications WHERE id = $1");
        let row: Option<NotificationRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, NotificationRow>(AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await
        })?;
        row.ok_or_else(|| Error::not_found("notification_not_found", format!("notification {id}")))?.try_into()
    }

    /// Records that a notification reached its channel. Called right after the
    /// send and before the attempt is finished, so a retry after a crash finds
    /// it delivered and does not send again.
    pub async fn mark_delivered(&self, id: NotificationId, detail: &str) -> Result<()> {
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>(
                "UPDATE alert_notifications SET status = 'delivered', delivered_at = $2, detail = $3 \
                 WHERE id = $1 AND status IN ('pending', 'failed')",
            )
            .bind(id)
            .bind(self.now())
            .bind(detail)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }
}
