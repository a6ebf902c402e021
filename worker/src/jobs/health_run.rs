//! `health.run`: measures this host's health checks (with the backup checks
//! of each VM that has backups) and records the run
//! (hysteresis, state, transitions and their alerts) in the ledger.

use hyperfleet_core::{
    operation::{ErrorClass, JobFailure, NoParams, Operation, OperationKind},
    outcome::Finish,
};
use serde_json::json;

use super::{Job, JobContext};

pub struct HealthRun;

impl Job for HealthRun {
    const KINDS: &'static [OperationKind] = &[OperationKind::HealthRun];
    type Params = NoParams;

    async fn run(ctx: &JobContext, op: &Operation, _params: NoParams) -> Finish {
        let started = ctx.store.now();
        let mut measurements = crate::health::measure(&ctx.hypervisor, &ctx.health, &ctx.dirs).await;
        match ctx.app.backup_health(&ctx.host, ctx.backups.max_age_h).await {
            Ok(checks) => measurements.extend(checks),
            Err(e) => {
                return Finish::Failed(JobFailure::new(ErrorClass::Transient, "health_record_failed", e.to_string()));
            }
        }
        match ctx.app.record_health_run(op.id, &ctx.host, started, &measurements).await {
            Ok(run) => Finish::Succeeded(json!({
                "health_run": run.id,
                "status": run.status,
                "checks": measurements.len(),
            })),
            Err(e) => Finish::Failed(JobFailure::new(ErrorClass::Transient, "health_record_failed", e.to_string())),
        }
    }
}
