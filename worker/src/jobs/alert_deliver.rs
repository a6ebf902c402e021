//! `alert.deliver`: sends one notification through one channel.
//!
//! Nothing is sent twice for one notification: the send is recorded on the
//! notification (`delivered`) before the attempt is finished, and an attempt
//! that finds it already delivered (its predecessor died after recording)
//! succeeds without sending. What remains at least once is the gap between the
//! peer accepting the message and that record; a worker killed exactly there
//! sends again on the retry. Webhook receivers can close the gap with the
//! `X-Hyperfleet-Delivery` header, mail readers with the Message-ID; both are
//! the notification id.

use hyperfleet_core::{
    AlertId, Timestamp,
    alert::{Alert, AlertSource, DeliverParams, NewAlert, NotificationStatus, Severity},
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    outcome::Finish,
};
use serde_json::json;

use super::{Job, JobContext};
use crate::alerts::Message;

pub struct AlertDeliver;

impl Job for AlertDeliver {
    const KINDS: &'static [OperationKind] = &[OperationKind::AlertDeliver];
    type Params = DeliverParams;

    async fn run(ctx: &JobContext, op: &Operation, params: DeliverParams) -> Finish {
        match deliver(ctx, op, &params).await {
            Ok(result) => Finish::Succeeded(result),
            Err(failure) => Finish::Failed(failure),
        }
    }
}

async fn deliver(ctx: &JobContext, op: &Operation, params: &DeliverParams) -> Result<serde_json::Value, JobFailure> {
    let db = |e: hyperfleet_core::Error| JobFailure::new(ErrorClass::Transient, "database", e.to_string());
    let notification = ctx.store.notification(params.notification_id).await.map_err(db)?;
    if notification.status == NotificationStatus::Delivered {
        return Ok(json!({
            "channel": params.channel,
            "already_delivered": true,
            "delivered_at": notification.delivered_at,
            "note": "an earlier attempt delivered it; not sent again",
        }));
    }
    let notifier = &ctx.notifier;
    let channel = notifier.settings.channel(&params.channel).ok_or_else(|| {
        JobFailure::new(
            ErrorClass::Permanent,
            "unknown_channel",
            format!("channel `{}` is not configured on this worker", params.channel),
        )
    })?;
    let (alert, link) = match notification.alert_id {
        Some(id) => (ctx.store.alert(id).await.map_err(db)?, format!("{}/api/v1/alerts/{id}", notifier.public_url)),
        None => (test_alert(&params.channel, &op.requested_by), format!("{}/api/v1/channels", notifier.public_url)),
    };
    let message =
        Message { event: params.event, alert, link, notification_id: notification.id, sent_at: ctx.store.now() };
    let detail = notifier.send(channel, &message).await?;
    // Record the send before the attempt ends; a few tries, since sending again is what this prevents.
    let mut recorded = ctx.store.mark_delivered(notification.id, &detail).await;
    for _ in 0..5 {
        if recorded.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        recorded = ctx.store.mark_delivered(notification.id, &detail).await;
    }
    if let Err(e) = recorded {
        tracing::error!(notification = %notification.id, error = %e, "delivered, but the delivery could not be recorded");
    }
    Ok(json!({ "channel": params.channel, "event": params.event.as_str(), "detail": detail }))
}

/// What a test notification shows: an info alert that exists only in the message.
fn test_alert(channel: &str, requested_by: &str) -> Alert {
    let message =
        format!("A test of channel {channel}, requested by {requested_by}. If you read this, the channel works.");
    let mut new = NewAlert::system(AlertSource::Manual, Severity::Info, "Hyperfleet test notification", message)
        .label("channel", channel)
        .dedup("test");
    new.actor = requested_by.to_owned();
    Alert { id: AlertId(uuid::Uuid::nil()), ..Alert::first(&new, Timestamp::now()) }
}
