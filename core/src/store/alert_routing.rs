//! The alert router and what it writes: each unrouted alert event becomes one
//! notification per channel — suppressed with a reason, or pending with the
//! `alert.deliver` operation that sends it — in the same transaction that
//! marks the event routed. Events are routed in order, one transaction each,
//! by one router at a time (PostgreSQL: an advisory lock; SQLite: its single
//! writer), so cooldowns are decided on a settled history.

use sqlx::{AssertSqlSafe, types::Json};

use super::{
    Store,
    alerts::{ALERT_COLUMNS, AlertRow, AlertTx},
    read_db,
    tx::{NewRow, PushWake},
    with_db,
};
use crate::{
    AlertEventId, AlertId, Error, NotificationId, OperationId, Result, SilenceId, Timestamp,
    alert::{
        Alert, AlertSource, ChannelHistory, DeliverParams, EventKind, Matcher, NewAlert, NewSilence, NotifyEvent,
        Severity, Silence, decide,
    },
    operation::{NewOperation, OperationKind},
    queue::{SHARED_QUEUE, queue_for},
    settings::AlertSettings,
};

/// Events routed per transaction.
const ROUTE_BATCH: usize = 64;

/// PostgreSQL advisory lock key of the router ("hf-alert").
const ROUTER_LOCK: i64 = 0x6866_2d61_6c65_7274;

/// What the router does with one channel for one event.
#[derive(Debug)]
struct Planned {
    channel: String,
    event: NotifyEvent,
    status: &'static str,
    reason: Option<&'static str>,
    silence: Option<SilenceId>,
}

/// How a channel last heard of things, for `GET /channels`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelStats {
    pub last_status: Option<String>,
    pub last_at: Option<Timestamp>,
    pub last_detail: Option<String>,
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
    pub suppressed: i64,
}

type SilenceRow = (SilenceId, Json<Vec<Matcher>>, Timestamp, Timestamp, String, String, Timestamp);

fn silence_of(r: SilenceRow) -> Silence {
    Silence { id: r.0, matchers: r.1.0, starts_at: r.2, ends_at: r.3, created_by: r.4, comment: r.5, created_at: r.6 }
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
                let mut plan = Vec::new();
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
                    let decision = decide(&channel.route(), &alert, kind, silence.is_some(), history, repeat, now);
                    let (event, status, reason) = match decision {
                        crate::alert::Decision::Skip => continue,
                        crate::alert::Decision::Send(event) => (event, "pending", None),
                        crate::alert::Decision::Suppress(reason) => {
                            let event =
                                if kind == EventKind::Resolved { NotifyEvent::Resolved } else { NotifyEvent::Firing };
                            (event, "suppressed", Some(reason.as_str()))
                        }
                    };
                    let silence = (reason == Some("silenced")).then_some(silence).flatten();
                    plan.push(Planned { channel: channel.name.clone(), event, status, reason, silence });
                }
                for p in &plan {
                    let id = NotificationId::new();
                    let operation = if p.status == "pending" {
                        let params = DeliverParams { notification_id: id, channel: p.channel.clone(), event: p.event };
                        Some(enqueue_delivery(&mut *tx, &params, "alerts", max_attempts, now).await?)
                    } else {
                        None
                    };
                    sqlx::query::<Db>(
                        "INSERT INTO alert_notifications (id, alert_id, event_id, channel, event, status, reason, \
                         silence_id, operation_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(id)
                    .bind(alert_id)
                    .bind(event_id)
                    .bind(&p.channel)
                    .bind(p.event.as_str())
                    .bind(p.status)
                    .bind(p.reason)
                    .bind(p.silence)
                    .bind(operation)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tracing::debug!(alert = %alert_id, event = kind.as_str(), notifications = plan.len(), "routed an alert event");
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
        let last: Option<(String, Timestamp, Option<String>)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, Timestamp, Option<String>)>(
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
            last_status: last.as_ref().map(|l| l.0.clone()),
            last_at: last.as_ref().map(|l| l.1),
            last_detail: last.and_then(|l| l.2),
            delivered: count("delivered"),
            failed: count("failed"),
            pending: count("pending"),
            suppressed: count("suppressed"),
        })
    }

    /// Suppressed notifications of an alert, counted per reason.
    pub async fn suppressed_counts(&self, alert: AlertId) -> Result<Vec<(String, i64)>> {
        read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, i64)>(
                "SELECT reason, COUNT(*) FROM alert_notifications WHERE alert_id = $1 AND status = 'suppressed' \
                 GROUP BY reason ORDER BY reason",
            )
            .bind(alert)
            .fetch_all(pool)
            .await
        })
        .map_err(Error::from)
    }

    pub async fn create_silence(&self, new: &NewSilence) -> Result<Silence> {
        let now = Timestamp::now();
        new.validate(now)?;
        let silence = Silence {
            id: SilenceId::new(),
            matchers: new.matchers.clone(),
            starts_at: new.starts_at.unwrap_or(now),
            ends_at: new.ends_at,
            created_by: new.created_by.clone(),
            comment: new.comment.clone(),
            created_at: now,
        };
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>(
                "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(silence.id)
            .bind(Json(&silence.matchers))
            .bind(silence.starts_at)
            .bind(silence.ends_at)
            .bind(&silence.created_by)
            .bind(&silence.comment)
            .bind(silence.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(silence)
    }

    /// Silences that have not ended (and, with `expired`, those that have), newest first.
    pub async fn silences(&self, expired: bool) -> Result<Vec<Silence>> {
        let rows: Vec<SilenceRow> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, SilenceRow>(
                "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silences \
                 WHERE $1 OR ends_at > $2 ORDER BY id DESC LIMIT 1000",
            )
            .bind(expired)
            .bind(Timestamp::now())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(silence_of).collect())
    }

    /// Ends a silence now (it stays in the history).
    pub async fn expire_silence(&self, id: SilenceId) -> Result<Silence> {
        let now = Timestamp::now();
        let row: Option<SilenceRow> = with_db!(self, |pool, Db| {
            sqlx::query_as::<Db, SilenceRow>(
                "UPDATE silences SET ends_at = CASE WHEN ends_at > $2 THEN $2 ELSE ends_at END WHERE id = $1 \
                 RETURNING id, matchers, starts_at, ends_at, created_by, comment, created_at",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        row.map(silence_of).ok_or_else(|| Error::not_found("silence_not_found", format!("silence {id}")))
    }

    /// The fleet monitor: raises `worker offline` for hosts whose worker stopped
    /// beating (resolved when it beats again or stops cleanly) and `backlog`
    /// for queues whose oldest runnable work is older than the threshold.
    pub async fn monitor_fleet(&self, settings: &AlertSettings) -> Result<()> {
        let now = Timestamp::now();
        for host in self.hosts().await? {
            let key = format!("fleet:{}:worker-offline", host.name);
            if host.stopped_at.is_none() && !host.online(now) {
                let alert = NewAlert::system(
                    AlertSource::Fleet,
                    Severity::Critical,
                    format!("Worker offline on {}", host.name),
                    format!(
                        "The worker of host {} has not sent a heartbeat since {} (every {} s expected); \
                         operations for this host wait.",
                        host.name, host.last_heartbeat, host.heartbeat_s
                    ),
                )
                .on_host(Some(&host.name))
                .dedup(key);
                self.raise_alert(&alert).await?;
            } else {
                let why = if host.stopped_at.is_some() { "the worker stopped cleanly" } else { "the worker is back" };
                self.resolve_alert_key(&key, "hyperfleet", why).await?;
            }
        }
        let runnable: Vec<(String, Timestamp)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, Timestamp)>(
                "SELECT queue, MIN(COALESCE(next_attempt_at, created_at)) FROM operations \
                 WHERE status = 'queued' OR (status = 'retrying' AND next_attempt_at <= $1) GROUP BY queue",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        let threshold = std::time::Duration::from_secs(settings.backlog_threshold_s);
        let firing: Vec<String> = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, String>(
                "SELECT dedup_key FROM alerts WHERE status = 'firing' AND source = 'fleet' AND dedup_key LIKE 'fleet:backlog:%'",
            )
            .fetch_all(pool)
            .await
        })?;
        for (queue, since) in &runnable {
            let key = format!("fleet:backlog:{queue}");
            if since.plus(threshold) <= now {
                let age_s = now.millis_since(*since) / 1000.0;
                let alert = NewAlert::system(
                    AlertSource::Fleet,
                    Severity::Warning,
                    format!("Backlog on {queue}"),
                    format!(
                        "Runnable work on queue {queue} has waited {age_s:.0} s (threshold {} s).",
                        threshold.as_secs()
                    ),
                )
                .label("queue", queue.clone())
                .dedup(key);
                self.raise_alert(&alert).await?;
            }
        }
        for key in firing {
            let cleared = runnable
                .iter()
                .find(|(q, _)| key == format!("fleet:backlog:{q}"))
                .is_none_or(|(_, since)| since.plus(threshold) > now);
            if cleared {
                self.resolve_alert_key(&key, "hyperfleet", "the backlog cleared").await?;
            }
        }
        Ok(())
    }
}

/// Inserts an `alert.deliver` operation and its wake-up inside `tx`.
async fn enqueue_delivery<C: PushWake>(
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
    tx.push_wake(&queue, id, None).await?;
    Ok(id)
}

/// What the ledger records, in the transaction that fails an operation for
/// good: a `delivery failed` alert for the other channels when it was a
/// delivery, else an `operation failed` warning linked to the operation.
pub(crate) async fn alert_failed_for_good<C: AlertTx + PushWake>(
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
    } else if failed.kind == OperationKind::BackupVerify.as_str() {
        let mut alert = NewAlert::system(
            AlertSource::Backup,
            Severity::Warning,
            "Backup verification failed",
            format!("Backup verification {} failed: {}: {}", failed.id, failed.code, failed.message),
        )
        .on_host(failed.host)
        .dedup(format!("backup:{}:verify", failed.host.unwrap_or("-")));
        alert.operation_id = Some(failed.id);
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
