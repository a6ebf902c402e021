//! Hyperfleet's scheduler: cron schedules → operations, exactly once per tick
//! however many schedulers run (the ledger arbitrates; see
//! `hyperfleet_core::store::Store::fire_due`). It also routes alert events
//! into notifications and runs the fleet monitor (offline workers, backlog).
//! It only enqueues; workers do the work, deliveries included.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use hyperfleet_core::{queue, settings::AlertSettings, store::Store};
use tokio_util::sync::CancellationToken;

/// How often a scheduler looks for due ticks: well under the one-second
/// resolution of the finest cron expression.
pub const TICK: Duration = Duration::from_millis(200);

/// Runs until `shutdown` is cancelled.
pub async fn run(store: Store, alerts: Arc<AlertSettings>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let me = format!("scheduler-{}-{}", std::process::id(), ulid::Ulid::new());
    tracing::info!(scheduler = me, channels = alerts.channels.len(), "scheduler started");
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut monitor = tokio::time::interval(Duration::from_secs(alerts.monitor_interval_s));
    monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Alert events committed in this process are routed at once; others within a tick.
    let mut alert_wakes = store.wakes.subscribe(queue::ALERTS);
    let attempts = alerts.delivery_max_attempts as i32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                match store.fire_due(&me).await {
                    Ok(fired) if !fired.is_empty() => tracing::info!(count = fired.len(), "fired schedules"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "firing schedules failed; retrying next tick"),
                }
                route(&store, &alerts, attempts).await;
            }
            Some(()) = alert_wakes.next() => route(&store, &alerts, attempts).await,
            _ = monitor.tick() => {
                if let Err(e) = store.monitor_fleet(&alerts).await {
                    tracing::warn!(error = %e, "the fleet monitor failed; retrying at its next interval");
                }
            }
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

async fn route(store: &Store, alerts: &AlertSettings, attempts: i32) {
    match store.route_alerts(alerts, attempts).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(events = n, "routed alert events"),
        Err(e) => tracing::warn!(error = %e, "routing alerts failed; retrying next tick"),
    }
}
