//! Hyperfleet's scheduler: cron schedules → operations, exactly once per tick,
//! however many schedulers run. It only enqueues; it never does the work.
//!
//! Schedules arrive with health checks and backup verification; until then
//! the scheduler process runs, reports itself, and waits for shutdown, so
//! that `hyperfleet up` and deployments already have their final shape.

use hyperfleet_core::store::Store;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown` is cancelled.
pub async fn run(store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    store.readiness().await?;
    tracing::info!("scheduler started (no schedules are defined yet)");
    shutdown.cancelled().await;
    tracing::info!("scheduler stopped");
    Ok(())
}
