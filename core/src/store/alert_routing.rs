//! What the alert router reads and writes (the router itself is a reconciler
//! of the scheduler): unrouted events, what a channel was told, notifications.
//! One router at a time (PostgreSQL: an advisory lock; SQLite: its single
//! writer), so cooldowns are decided on a settled history.

use sqlx::AssertSqlSafe;

use super::{
    Store,
    alerts::{ALERT_COLUMNS, AlertRow},
    read_db,
    tx::on_tx,
};
use crate::{
    AlertEventId, AlertId, Error, NotificationId, OperationId, Result, Timestamp,
    alert::{Alert, AlertSource, ChannelHistory, EventKind, NotificationStatus, NotifyEvent, SuppressReason},
};

/// PostgreSQL advisory lock key of the router ("hf-alert").
const ROUTER_LOCK: i64 = 0x6866_2d61_6c65_7274;

/// How a channel last heard of things, for `GET /channels`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelStats {
    pub last_status: Option<crate::alert::NotificationStatus>,
    pub last_at: Option<Timestamp>,
    pub last_detail: Option<String>,
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
    pub suppressed: i64,
}

impl Store {
    /// Whether any alert event waits for the router (a read, before taking the writer).
    pub async fn has_unrouted_events(&self) -> Result<bool> {
        let pending: Option<i32> = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, i32>("SELECT 1 FROM alert_events WHERE routed_at IS NULL LIMIT 1")
                .fetch_optional(pool)
                .await
        })?;
        Ok(pending.is_some())
    }

    /// Dedup keys of the alerts of `source` firing now.
    pub async fn firing_keys(&self, source: AlertSource) -> Result<Vec<String>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, String>("SELECT dedup_key FROM alerts WHERE status = 'firing' AND source = $1")
                .bind(source.as_str())
                .fetch_all(pool)
                .await
        })?)
    }

    pub async fn channel_stats(&self, channel: &str) -> Result<ChannelStats> {
        type Last = (crate::alert::NotificationStatus, Timestamp, Option<String>);
        let last: Option<Last> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, Last>(
                "SELECT status, COALESCE(delivered_at, created_at), detail FROM alert_notifications \
                 WHERE channel = $1 AND status <> 'suppressed' ORDER BY id DESC LIMIT 1",
            )
            .bind(channel)
            .fetch_optional(pool)
            .await
        })?;
        let counts: Vec<(String, i64)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, i64)>(
                "SELECT status, COUNT(*) FROM alert_notifications WHERE channel = $1 GROUP BY status",
            )
            .bind(channel)
            .fetch_all(pool)
            .await
        })?;
        let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        Ok(ChannelStats {
            last_status: last.as_ref().map(|l| l.0),
            last_at: last.as_ref().map(|l| l.1),
            last_detail: last.and_then(|l| l.2),
            delivered: count("delivered"),
            failed: count("failed"),
            pending: count("pending"),
            suppressed: count("suppressed"),
        })
    }

    /// Suppressed notifications of an alert, counted per reason.
    pub async fn suppressed_counts(&self, alert: AlertId) -> Result<Vec<(crate::alert::SuppressReason, i64)>> {
        read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (crate::alert::SuppressReason, i64)>(
                "SELECT reason, COUNT(*) FROM alert_notifications WHERE alert_id = $1 AND status = 'suppressed' \
                 GROUP BY reason ORDER BY reason",
            )
            .bind(alert)
            .fetch_all(pool)
            .await
        })
        .map_err(Error::from)
    }
}

/// A notification as the router writes it.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    pub id: NotificationId,
    pub alert: Option<AlertId>,
    pub event_id: Option<AlertEventId>,
    pub channel: &'a str,
    pub event: NotifyEvent,
    /// `Some`: suppressed for this reason; `None`: pending, sent by `operation`.
    pub reason: Option<SuppressReason>,
    pub silence: Option<crate::SilenceId>,
    pub operation: Option<OperationId>,
}

impl super::Tx {
    /// Serialises routers across processes (PostgreSQL; SQLite has one writer).
    pub async fn lock_router(&mut self) -> Result<()> {
        if self.is_postgres() {
            on_tx!(self, |c, Db| sqlx::query::<Db>("SELECT pg_advisory_xact_lock($1)")
                .bind(ROUTER_LOCK)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Marks up to `limit` unrouted events routed, oldest first, and returns them.
    pub async fn claim_unrouted(&mut self, limit: usize) -> Result<Vec<(AlertEventId, AlertId, EventKind)>> {
        let now = self.now();
        let mut claimed = on_tx!(self, |c, Db| {
            sqlx::query_as::<Db, (AlertEventId, AlertId, EventKind)>(
                "UPDATE alert_events SET routed_at = $1 WHERE routed_at IS NULL AND id IN \
                 (SELECT id FROM alert_events WHERE routed_at IS NULL ORDER BY id LIMIT $2) RETURNING id, alert_id, kind",
            )
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&mut *c)
            .await
        })?;
        claimed.sort_by_key(|c| c.0);
        Ok(claimed)
    }

    /// An alert as this transaction sees it.
    pub async fn alert(&mut self, id: AlertId) -> Result<Alert> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        let row: AlertRow = on_tx!(self, |c, Db| {
            sqlx::query_as::<Db, AlertRow>(AssertSqlSafe(sql.as_str())).bind(id).fetch_one(&mut *c).await
        })?;
        row.try_into()
    }

    /// What `channel` has been told of `alert` so far.
    pub async fn channel_history(&mut self, alert: AlertId, channel: &str) -> Result<ChannelHistory> {
        let last_firing_sent = on_tx!(self, |c, Db| {
            sqlx::query_scalar::<Db, Option<Timestamp>>(
                "SELECT MAX(created_at) FROM alert_notifications WHERE alert_id = $1 AND channel = $2 \
                 AND event = 'firing' AND status <> 'suppressed'",
            )
            .bind(alert)
            .bind(channel)
            .fetch_one(&mut *c)
            .await
        })?;
        Ok(ChannelHistory { last_firing_sent })
    }

    pub async fn insert_notification(&mut self, n: &NewNotification<'_>) -> Result<()> {
        let now = self.now();
        let status = if n.reason.is_some() { NotificationStatus::Suppressed } else { NotificationStatus::Pending };
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "INSERT INTO alert_notifications (id, alert_id, event_id, channel, event, status, reason, \
                 silence_id, operation_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(n.id)
            .bind(n.alert)
            .bind(n.event_id)
            .bind(n.channel)
            .bind(n.event.as_str())
            .bind(status.as_str())
            .bind(n.reason.map(SuppressReason::as_str))
            .bind(n.silence)
            .bind(n.operation)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
