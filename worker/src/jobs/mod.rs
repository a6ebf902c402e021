//! One job per file, named for its action. A job body gets the claimed
//! operation and a [`JobContext`], does one attempt, and reports how it ended;
//! the runner records it and the ledger decides about retries.

mod alert_deliver;
mod health_run;
mod noop;
mod vm_power;

use hyperfleet_core::{
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    store::{Finish, Store},
};
use tokio_util::sync::CancellationToken;

use crate::libvirt::Hypervisor;

/// What a job body may use.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub store: Store,
    pub hypervisor: std::sync::Arc<Hypervisor>,
    pub host: String,
    /// Cancelled when a user asked to cancel this operation; jobs check it at safe points.
    pub cancel: CancellationToken,
    pub health: std::sync::Arc<hyperfleet_core::settings::HealthSettings>,
    pub dirs: crate::system::WatchedDirs,
    pub retention: std::sync::Arc<hyperfleet_core::settings::RetentionSettings>,
    pub notifier: std::sync::Arc<crate::alerts::Notifier>,
}

/// Runs one attempt of `op`.
pub async fn run(ctx: &JobContext, op: &Operation) -> Finish {
    let kind = op.kind;
    if ctx.cancel.is_cancelled() {
        return Finish::Cancelled("cancel requested before the attempt started".into());
    }
    match kind {
        OperationKind::Noop => noop::run(ctx, op).await,
        OperationKind::HealthRun => health_run::run(ctx, op).await,
        OperationKind::AlertDeliver => alert_deliver::run(ctx, op).await,
        OperationKind::LedgerPrune => match ctx.store.prune(&ctx.retention).await {
            Ok(report) => {
                tracing::info!(?report, "pruned the ledger");
                Finish::Succeeded(serde_json::to_value(report).unwrap_or_default())
            }
            Err(e) => Finish::Failed(JobFailure::new(ErrorClass::Transient, "prune_failed", e.to_string())),
        },
        other => match other.vm_action() {
            Some(action) => vm_power::run(ctx, op, action).await,
            None => Finish::Failed(JobFailure::new(ErrorClass::Permanent, "not_implemented", other.as_str())),
        },
    }
}
