//! Hyperfleet's scheduler: the reconcilers. Each is a small, idempotent unit
//! that makes the world match the ledger, and records its last run (when, how
//! long, what it did, its last error) for `GET /api/v1/reconcilers`:
//!
//! - [`fire_schedules`]: due cron ticks → operations, exactly once per tick
//!   however many schedulers run;
//! - [`route_alerts`]: alert events → one notification per channel, sent as
//!   `alert.deliver` operations or suppressed with a reason;
//! - [`fleet_monitor`]: workers that stopped beating and queue backlog → alerts;
//! - [`audit_checkpoint`]: the audit chain's sealed head, logged daily.
//!
//! It only enqueues and records; workers do the work, deliveries included.

pub mod audit_checkpoint;
pub mod fire_schedules;
pub mod fleet_monitor;
mod reconciler;
pub mod route_alerts;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use hyperfleet_core::{app::App, queue, settings::AlertSettings};
use tokio_util::sync::CancellationToken;

pub use crate::reconciler::Ran;
use crate::reconciler::Tracker;

/// How often a scheduler looks for due ticks: well under the one-second
/// resolution of the finest cron expression.
pub const TICK: Duration = Duration::from_millis(200);

/// Runs until `shutdown` is cancelled.
pub async fn run(app: App, alerts: Arc<AlertSettings>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let me = format!("scheduler-{}-{}", std::process::id(), ulid::Ulid::new());
    tracing::info!(scheduler = me, channels = alerts.channels.len(), "scheduler started");
    let store = app.store().clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut monitor = tokio::time::interval(Duration::from_secs(alerts.monitor_interval_s));
    monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Alert events committed in this process are routed at once; others within a tick.
    let mut alert_wakes = store.wakes.subscribe(queue::ALERTS);
    let mut fire = Tracker::new("fire_schedules", &me);
    let mut route = Tracker::new("route_alerts", &me);
    let mut fleet = Tracker::new("fleet_monitor", &me);
    let mut checkpoint = Tracker::new("audit_checkpoint", &me);
    let mut daily = tokio::time::interval(audit_checkpoint::EVERY);
    daily.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                fire.run(&store, fire_schedules::run(&app, &me)).await;
                route.run(&store, route_alerts::run(&app, &alerts)).await;
            }
            Some(()) = alert_wakes.next() => route.run(&store, route_alerts::run(&app, &alerts)).await,
            _ = monitor.tick() => fleet.run(&store, fleet_monitor::run(&app, &alerts)).await,
            _ = daily.tick() => checkpoint.run(&store, audit_checkpoint::run(&app)).await,
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}
