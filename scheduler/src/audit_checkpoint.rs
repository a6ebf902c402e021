//! Reconciler: once a day, the audit chain's head, sealed, goes to the log —
//! outside the database — so that `hyperfleet audit verify --checkpoint`
//! has a recent head to hold the log to even if nobody saved one by hand.

use std::time::Duration;

use hyperfleet_core::{Result, app::App};

use crate::reconciler::Ran;

/// How often a checkpoint is logged.
pub const EVERY: Duration = Duration::from_secs(24 * 3600);

pub async fn run(app: &App) -> Result<Ran> {
    let c = app.audit_checkpoint().await?;
    let line = serde_json::to_string(&c).map_err(hyperfleet_core::Error::internal)?;
    tracing::info!(target: "hyperfleet::audit", sequence = c.sequence, checkpoint = %line, "audit checkpoint");
    Ok(Ran::did(1, format!("checkpoint at event {}: {line}", c.sequence)))
}
