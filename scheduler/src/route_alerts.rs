//! Reconciler: every unrouted alert event becomes one notification per
//! channel — suppressed with a reason, or pending with the `alert.deliver`
//! operation that sends it — in the transaction that marks the event routed.
//! The decision is `alert::decide`; this only feeds it and writes its answer.

use hyperfleet_core::{
    NotificationId, Result,
    alert::{Decision, DeliverParams, EventKind, NotifyEvent, SuppressReason, decide},
    app::App,
    operation::{NewOperation, OperationKind},
    settings::AlertSettings,
    store::{Links, NewNotification},
};

use crate::reconciler::Ran;

/// Events routed per transaction (one commit, one fsync on SQLite, per batch).
const BATCH: usize = 64;

/// Routes every unrouted event, a batch per transaction, oldest first.
pub async fn run(app: &App, settings: &AlertSettings) -> Result<Ran> {
    let store = app.store();
    let mut routed = 0;
    while routed < 10 * BATCH && store.has_unrouted_events().await? {
        let n = batch(app, settings).await?;
        routed += n;
        if n < BATCH {
            break;
        }
    }
    Ok(if routed > 0 { Ran::did(routed, format!("routed {routed} alert events")) } else { Ran::nothing("no events") })
}

/// Events of one alert in the same batch see each other's notifications, so cooldowns hold.
async fn batch(app: &App, settings: &AlertSettings) -> Result<usize> {
    let store = app.store();
    let silences = store.silences(false).await?;
    let mut tx = store.begin().await?;
    tx.lock_router().await?;
    let now = tx.now();
    let claimed = tx.claim_unrouted(BATCH).await?;
    for &(event_id, alert_id, kind) in &claimed {
        let alert = tx.alert(alert_id).await?;
        let silence = silences.iter().find(|s| s.mutes(&alert.facts(), now)).map(|s| s.id);
        for channel in &settings.channels {
            let history = tx.channel_history(alert_id, &channel.name).await?;
            let repeat = settings.repeat_s.of(alert.severity);
            let id = NotificationId::new();
            let (event, reason, operation) =
                match decide(&channel.route(), &alert, kind, silence.is_some(), history, repeat, now) {
                    Decision::Skip => continue,
                    Decision::Send(event) => {
                        let params = DeliverParams { notification_id: id, channel: channel.name.clone(), event };
                        let new = NewOperation {
                            kind: OperationKind::AlertDeliver,
                            host: None,
                            vm: None,
                            params: serde_json::to_value(&params).map_err(hyperfleet_core::Error::internal)?,
                            requested_by: "alerts".into(),
                            request_id: None,
                            idempotency_key: None,
                            max_attempts: settings.delivery_max_attempts as i32,
                        };
                        (event, None, Some(tx.insert_operation(&new, Links::default()).await?.id))
                    }
                    Decision::Suppress(reason) => {
                        let event =
                            if kind == EventKind::Resolved { NotifyEvent::Resolved } else { NotifyEvent::Firing };
                        (event, Some(reason), None)
                    }
                };
            let notification = NewNotification {
                id,
                alert: Some(alert_id),
                event_id: Some(event_id),
                channel: &channel.name,
                event,
                reason,
                silence: silence.filter(|_| reason == Some(SuppressReason::Silenced)),
                operation,
            };
            tx.insert_notification(&notification).await?;
        }
        tracing::debug!(alert = %alert_id, event = kind.as_str(), "routed an alert event");
    }
    tx.commit().await?;
    Ok(claimed.len())
}
