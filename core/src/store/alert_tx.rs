//! Raising and resolving alerts inside a caller's transaction, on either
//! backend: what lets an operation's failure and its alert be one write.

use sqlx::{PgConnection, SqliteConnection, types::Json};

use crate::{
    AlertEventId, AlertId, Error, NotificationId, OperationId, Result, Timestamp,
    alert::{EventKind, NewAlert, Severity},
};

pub(crate) trait AlertTx {
    /// Records an occurrence: a new firing alert, or one more occurrence of the
    /// firing alert with the same dedup key. Returns the alert and the event.
    async fn raise_alert(&mut self, new: &NewAlert, now: Timestamp) -> Result<(AlertId, EventKind)>;

    /// Resolves the firing alert with this dedup key, if there is one.
    async fn resolve_alert(
        &mut self,
        dedup_key: &str,
        actor: &str,
        message: &str,
        now: Timestamp,
    ) -> Result<Option<AlertId>>;

    /// Appends an entry to an alert's history (unrouted unless `routed`).
    async fn insert_alert_event(&mut self, alert: AlertId, e: NewEvent<'_>) -> Result<()>;

    /// A delivery that failed for good.
    async fn mark_notification_failed(&mut self, id: NotificationId, detail: &str) -> Result<()>;
}

/// An entry of an alert's history, as written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEvent<'a> {
    pub kind: EventKind,
    pub at: Timestamp,
    pub severity: Severity,
    pub message: &'a str,
    pub actor: &'a str,
    pub operation: Option<OperationId>,
    /// Already decided (nothing to notify).
    pub routed: bool,
}

macro_rules! alert_tx {
    ($db:ty) => {
        async fn raise_alert(&mut self, new: &NewAlert, now: Timestamp) -> Result<(AlertId, EventKind)> {
            let key = new.effective_dedup_key();
            let mut tries = 0;
            let (id, kind) = loop {
                let firing: Option<(AlertId, String)> = sqlx::query_as::<$db, (AlertId, String)>(
                    "SELECT id, severity FROM alerts WHERE dedup_key = $1 AND status = 'firing'",
                )
                .bind(&key)
                .fetch_optional(&mut *self)
                .await?;
                if let Some((id, severity)) = firing {
                    let escalated = Severity::parse(&severity).is_ok_and(|old| new.severity > old);
                    sqlx::query::<$db>(
                        "UPDATE alerts SET severity = $2, title = $3, message = $4, labels = $5, last_seen = $6, \
                         occurrences = occurrences + 1, operation_id = COALESCE($7, operation_id) WHERE id = $1",
                    )
                    .bind(id)
                    .bind(new.severity.as_str())
                    .bind(&new.title)
                    .bind(&new.message)
                    .bind(Json(&new.labels))
                    .bind(now)
                    .bind(new.operation_id)
                    .execute(&mut *self)
                    .await?;
                    break (id, if escalated { EventKind::Escalated } else { EventKind::Repeated });
                }
                // A concurrent raise of the same key may win the insert; then this is an occurrence of its alert.
                let id = AlertId::new();
                let inserted = sqlx::query::<$db>(
                    "INSERT INTO alerts (id, dedup_key, source, host, severity, title, message, labels, status, \
                     first_seen, last_seen, occurrences, operation_id, exclude_channel, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'firing', $9, $9, 1, $10, $11, $12) \
                     ON CONFLICT (dedup_key) WHERE status = 'firing' DO NOTHING",
                )
                .bind(id)
                .bind(&key)
                .bind(new.source.as_str())
                .bind(&new.host)
                .bind(new.severity.as_str())
                .bind(&new.title)
                .bind(&new.message)
                .bind(Json(&new.labels))
                .bind(now)
                .bind(new.operation_id)
                .bind(&new.exclude_channel)
                .bind(&new.actor)
                .execute(&mut *self)
                .await?
                .rows_affected();
                if inserted == 1 {
                    break (id, EventKind::Fired);
                }
                tries += 1;
                if tries > 3 {
                    return Err(Error::conflict("alert_conflict", format!("alert `{key}` keeps changing; retry")));
                }
            };
            let event = NewEvent {
                kind,
                at: now,
                severity: new.severity,
                message: &new.message,
                actor: &new.actor,
                operation: new.operation_id,
                routed: false,
            };
            self.insert_alert_event(id, event).await?;
            Ok((id, kind))
        }

        async fn resolve_alert(
            &mut self,
            dedup_key: &str,
            actor: &str,
            message: &str,
            now: Timestamp,
        ) -> Result<Option<AlertId>> {
            let row: Option<(AlertId, String)> = sqlx::query_as::<$db, (AlertId, String)>(
                "UPDATE alerts SET status = 'resolved', resolved_at = $2, last_seen = $2 \
                 WHERE dedup_key = $1 AND status = 'firing' RETURNING id, severity",
            )
            .bind(dedup_key)
            .bind(now)
            .fetch_optional(&mut *self)
            .await?;
            let Some((id, severity)) = row else { return Ok(None) };
            let severity = Severity::parse(&severity)?;
            let event = NewEvent { kind: EventKind::Resolved, at: now, severity, message, actor, operation: None, routed: false };
            self.insert_alert_event(id, event).await?;
            Ok(Some(id))
        }

        async fn insert_alert_event(&mut self, alert: AlertId, e: NewEvent<'_>) -> Result<()> {
            sqlx::query::<$db>(
                "INSERT INTO alert_events (id, alert_id, kind, at, severity, message, actor, operation_id, routed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(AlertEventId::new())
            .bind(alert)
            .bind(e.kind.as_str())
            .bind(e.at)
            .bind(e.severity.as_str())
            .bind(e.message)
            .bind(e.actor)
            .bind(e.operation)
            .bind(e.routed.then_some(e.at))
            .execute(&mut *self)
            .await?;
            Ok(())
        }

        async fn mark_notification_failed(&mut self, id: NotificationId, detail: &str) -> Result<()> {
            sqlx::query::<$db>(
                "UPDATE alert_notifications SET status = 'failed', detail = $2 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(detail)
            .execute(&mut *self)
            .await?;
            Ok(())
        }
    };
}

impl AlertTx for SqliteConnection {
    alert_tx!(sqlx::Sqlite);
}

impl AlertTx for PgConnection {
    alert_tx!(sqlx::Postgres);
}

impl super::Tx {
    /// Records an occurrence of `new` (see [`AlertTx::raise_alert`]); the router
    /// in this process is woken after commit.
    pub async fn raise_alert(&mut self, new: &NewAlert) -> Result<(AlertId, EventKind)> {
        let now = self.now();
        let raised = super::tx::on_tx!(self, |c, Db| c.raise_alert(new, now).await)?;
        self.wake_after_commit(crate::queue::ALERTS);
        Ok(raised)
    }

    /// Resolves the firing alert with this dedup key, if there is one.
    pub async fn resolve_alert_key(&mut self, dedup_key: &str, actor: &str, message: &str) -> Result<Option<AlertId>> {
        let now = self.now();
        let resolved = super::tx::on_tx!(self, |c, Db| c.resolve_alert(dedup_key, actor, message, now).await)?;
        if resolved.is_some() {
            self.wake_after_commit(crate::queue::ALERTS);
        }
        Ok(resolved)
    }

    /// A delivery that failed for good.
    pub async fn mark_notification_failed(&mut self, id: NotificationId, detail: &str) -> Result<()> {
        super::tx::on_tx!(self, |c, Db| c.mark_notification_failed(id, detail).await)
    }

    /// Applies what an alert source decided.
    pub async fn apply_alert(&mut self, change: &crate::alert::AlertChange) -> Result<()> {
        use crate::alert::AlertChange;
        match change {
            AlertChange::Raise(new) => self.raise_alert(new).await.map(drop),
            AlertChange::Resolve { dedup_key, message } => {
                self.resolve_alert_key(dedup_key, "hyperfleet", message).await.map(drop)
            }
        }
    }
}
