//! Hyperfleet's scheduler: cron schedules → operations, exactly once per tick
//! however many schedulers run (the ledger arbitrates; see
//! `hyperfleet_core::store::Store::fire_due`). It only enqueues; workers do
//! the work.

use std::time::Duration;

use hyperfleet_core::store::Store;
use tokio_util::sync::CancellationToken;

/// How often a scheduler looks for due ticks: well under the one-second
/// resolution of the finest cron expression.
pub const TICK: Duration = Duration::from_millis(200);

/// Runs until `shutdown` is cancelled.
pub async fn run(store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    let me = format!("scheduler-{}-{}", std::process::id(), ulid::Ulid::new());
    tracing::info!(scheduler = me, "scheduler started");
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => match store.fire_due(&me).await {
                Ok(fired) if !fired.is_empty() => tracing::info!(count = fired.len(), "fired schedules"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "firing schedules failed; retrying next tick"),
            },
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}
