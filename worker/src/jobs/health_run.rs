//! `health.run`: measures this host's health checks and records the run
//! (hysteresis, state, transitions) in the ledger.

use hyperfleet_core::{
    Timestamp,
    operation::{ErrorClass, JobFailure, Operation},
    store::Finish,
};
use serde_json::json;

use super::JobContext;

pub async fn run(ctx: &JobContext, op: &Operation) -> Finish {
    let started = Timestamp::now();
    let measurements = crate::health::measure(&ctx.hypervisor, &ctx.store, &ctx.health, &ctx.dirs).await;
    match ctx.store.record_health_run(op.id, &ctx.host, started, &measurements).await {
        Ok(run) => Finish::Succeeded(json!({
            "health_run": run.id,
            "status": run.status,
            "checks": measurements.len(),
        })),
        Err(e) => Finish::Failed(JobFailure::new(ErrorClass::Transient, "health_record_failed", e.to_string())),
    }
}
