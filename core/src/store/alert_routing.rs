//! The alert router and what it writes: each unrouted alert event becomes one
//! notification per channel — suppressed with a reason, or pending with the
//! `alert.deliver` operation that sends it — in the same transaction that
//! marks the event routed. Events are routed in order, one transaction each,
//! by one router at a time (PostgreSQL: an advisory lock; SQLite: its single
//! writer), so cooldowns are decided on a settled history.

use sqlx::AssertSqlSafe;

use super::{
    Store,
    alerts::{ALERT_COLUMNS, AlertRow, AlertTx},
    read_db,
    tx::{LedgerTx, NewRow},
    with_db,
};
use crate::{
    AlertEventId, AlertId, Error, NotificationId, OperationId, Result, Timestamp,
    alert::{
        Alert, AlertSource, ChannelHistory, Decision, DeliverParams, EventKind, NewAlert, NotificationStatus,
        NotifyEvent, Severity, SuppressReason, decide,
    },
    operation::{NewOperation, OperationKind},
    queue::{SHARED_QUEUE, queue_for},
    settings::AlertSettings,
};

/// Events routed per transaction.
const ROUTE_BATCH: usize = 64;

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
    /// Routes every unrouted alert event; returns how many it routed.
    pub async fn route_alerts(&self, settings: &AlertSettings, max_attempts: i32) -> Result<usize> {
        let mut routed = 0;
        loop {
            let n = self.route_batch(settings, max_attempts).await?;
            routed += n;
            if n < ROUTE_BATCH || routed >= 10 * ROUTE_BATCH {
                break;
            }
        }
        if routed > 0 {
            self.wakes.notify(SHARED_QUEUE);
        }
        Ok(routed)
    }

    /// Routes up to [`ROUTE_BATCH`] events, oldest first, in one transaction
    /// (one commit, one fsync on SQLite, for the batch). Events of one alert in
    /// the same batch see each other's notifications, so cooldowns hold.
    async fn route_batch(&self, settings: &AlertSettings, max_attempts: i32) -> Result<usize> {
        // Called every scheduler tick: look on a read connection before taking the writer.
        let pending: Option<i32> = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, i32>("SELECT 1 FROM alert_events WHERE routed_at IS NULL LIMIT 1")
                .fetch_optional(pool)
                .await
        })?;
        if pending.is_none() {
            return Ok(0);
        }
        let now = Timestamp::now();
        let silences = self.silences(false).await?;
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            if matches!(self.backend, super::Backend::Postgres(_)) {
                sqlx::query::<Db>("SELECT pg_advisory_xact_lock($1)").bind(ROUTER_LOCK).execute(&mut *tx).await?;
            }
            let mut claimed: Vec<(AlertEventId, AlertId, String)> = sqlx::query_as::<Db, (AlertEventId, AlertId, String)>(
                "UPDATE alert_events SET routed_at = $1 WHERE routed_at IS NULL AND id IN \
                 (SELECT id FROM alert_events WHERE routed_at IS NULL ORDER BY id LIMIT $2) RETURNING id, alert_id, kind",
            )
            .bind(now)
            .bind(ROUTE_BATCH as i64)
            .fetch_all(&mut *tx)
            .await?;
            claimed.sort_by_key(|c| c.0);
            for (event_id, alert_id, kind) in &claimed {
                let kind = EventKind::parse(kind)?;
                let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
                let alert: Alert = sqlx::query_as::<Db, AlertRow>(AssertSqlSafe(sql))
                    .bind(alert_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_into()?;
                let silence = silences.iter().find(|s| s.mutes(&alert.facts(), now)).map(|s| s.id);
                let mut notified = 0;
                for channel in &settings.channels {
                    let last_firing_sent: Option<Timestamp> = sqlx::query_scalar::<Db, Option<Timestamp>>(
                        "SELECT MAX(created_at) FROM alert_notifications WHERE alert_id = $1 AND channel = $2 \
                         AND event = 'firing' AND status <> 'suppressed'",
                    )
                    .bind(alert_id)
                    .bind(&channel.name)
                    .fetch_one(&mut *tx)
                    .await?;
                    let history = ChannelHistory { last_firing_sent };
                    let repeat = settings.repeat_s.of(alert.severity);
                    let id = NotificationId::new();
                    let (event, reason, operation) =
                        match decide(&channel.route(), &alert, kind, silence.is_some(), history, repeat, now) {
                            Decision::Skip => continue,
                            Decision::Send(event) => {
                                let params =
                                    DeliverParams { notification_id: id, channel: channel.name.clone(), event };
                                (
                                    event,
                                    None,
                                    Some(enqueue_delivery(&mut *tx, &params, "alerts", max_attempts, now).await?),
                                )
                            }
                            Decision::Suppress(reason) => {
                                let event = if kind == EventKind::Resolved {
                                    NotifyEvent::Resolved
                                } else {
                                    NotifyEvent::Firing
                                };
                                (event, Some(reason), None)
                            }
                        };
                    let status =
                        if reason.is_some() { NotificationStatus::Suppressed } else { NotificationStatus::Pending };
                    sqlx::query::<Db>(
                        "INSERT INTO alert_notifications (id, alert_id, event_id, channel, event, status, reason, \
                         silence_id, operation_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(id)
                    .bind(alert_id)
                    .bind(event_id)
                    .bind(&channel.name)
                    .bind(event.as_str())
                    .bind(status.as_str())
                    .bind(reason.map(SuppressReason::as_str))
                    .bind(silence.filter(|_| reason == Some(SuppressReason::Silenced)))
                    .bind(operation)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    notified += 1;
                }
                tracing::debug!(alert = %alert_id, event = kind.as_str(), notified, "routed an alert event");
            }
            tx.commit().await?;
            Ok::<_, Error>(claimed.len())
        })
    }

    /// Test notifications through `channels`, outside any alert and policy.
    /// Returns (channel, notification, delivery operation) per channel.
    pub async fn test_notifications(
        &self,
        channels: &[&str],
        requested_by: &str,
        max_attempts: i32,
    ) -> Result<Vec<(String, NotificationId, OperationId)>> {
        let now = Timestamp::now();
        let mut out = Vec::new();
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            for channel in channels {
                let id = NotificationId::new();
                let params =
                    DeliverParams { notification_id: id, channel: (*channel).to_owned(), event: NotifyEvent::Test };
                let op = enqueue_delivery(&mut *tx, &params, requested_by, max_attempts, now).await?;
                sqlx::query::<Db>(
                    "INSERT INTO alert_notifications (id, channel, event, status, operation_id, created_at) \
                     VALUES ($1, $2, 'test', 'pending', $3, $4)",
                )
                .bind(id)
                .bind(*channel)
                .bind(op)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                out.push(((*channel).to_owned(), id, op));
            }
            tx.commit().await?;
        });
        self.wakes.notify(SHARED_QUEUE);
        Ok(out)
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

/// Inserts an `alert.deliver` operation and its wake-up inside `tx`.
async fn enqueue_delivery<C: LedgerTx>(
    tx: &mut C,
    params: &DeliverParams,
    requested_by: &str,
    max_attempts: i32,
    now: Timestamp,
) -> Result<OperationId> {
    let new = NewOperation {
        kind: OperationKind::AlertDeliver,
        host: None,
        vm: None,
        params: serde_json::to_value(params).map_err(Error::internal)?,
        requested_by: requested_by.to_owned(),
        request_id: None,
        idempotency_key: None,
        max_attempts,
    };
    let id = OperationId::new();
    let queue = queue_for(None);
    let hash = new.request_hash();
    let row = NewRow { id, new: &new, hash: &hash, queue: &queue, retry_of: None, schedule_id: None, now };
    tx.insert_operation(row).await?;
    tx.announce(&queue).await?;
    Ok(id)
}

/// What the ledger records, in the transaction that fails an operation for
/// good: a `delivery failed` alert for the other channels when it was a
/// delivery, else an `operation failed` warning linked to the operation.
pub(crate) async fn alert_failed_for_good<C: AlertTx + LedgerTx>(
    tx: &mut C,
    failed: FailedOp<'_>,
    now: Timestamp,
) -> Result<()> {
    let alert = if failed.kind == OperationKind::AlertDeliver.as_str() {
        let Ok(params) = serde_json::from_value::<DeliverParams>(failed.params.clone()) else { return Ok(()) };
        tx.mark_notification_failed(params.notification_id, &format!("{}: {}", failed.code, failed.message)).await?;
        let mut alert = NewAlert::system(
            AlertSource::Fleet,
            Severity::Critical,
            format!("Alert delivery failed on channel {}", params.channel),
            format!(
                "A {} notification could not be delivered through channel {} after every attempt: {}: {}",
                params.event.as_str(),
                params.channel,
                failed.code,
                failed.message
            ),
        )
        .label("channel", params.channel.clone())
        .dedup(format!("fleet:delivery-failed:{}", params.channel));
        alert.exclude_channel = Some(params.channel);
        alert
    } else {
        let target = failed.vm.map(|vm| format!(" on VM {vm}")).unwrap_or_default();
        let mut alert = NewAlert::system(
            AlertSource::Operation,
            Severity::Warning,
            format!("Operation {}{target} failed", failed.kind),
            format!("Operation {} ({}) failed for good: {}: {}", failed.id, failed.kind, failed.code, failed.message),
        )
        .on_host(failed.host)
        .label("kind", failed.kind)
        .dedup(format!(
            "operation:{}:{}:{}",
            failed.host.unwrap_or("-"),
            failed.kind,
            failed.vm.unwrap_or("-")
        ));
        if let Some(vm) = failed.vm {
            alert = alert.label("vm", vm);
        }
        alert.operation_id = Some(failed.id);
        alert
    };
    tx.raise_alert(&alert, now).await?;
    Ok(())
}

/// An operation that just failed for good.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailedOp<'a> {
    pub id: OperationId,
    pub kind: &'a str,
    pub host: Option<&'a str>,
    pub vm: Option<&'a str>,
    pub params: &'a serde_json::Value,
    /// The last attempt's error code and message.
    pub code: &'a str,
    pub message: &'a str,
}
