//! The job registry: one job per file, named for its action. A job declares
//! the operation kinds it carries out and its typed parameters (checked when
//! submitted by `hyperfleet_core::operation::check_params`, parsed again
//! here), does one attempt, and reports how it ended; the runner records it
//! and the ledger decides about retries. Adding a kind is a new file here and
//! a line in [`registry!`] (see README.md, "Adding an operation kind").

mod alert_deliver;
mod backup_create;
mod backup_delete;
mod backup_prune;
mod backup_verify;
mod health_run;
mod ledger_prune;
mod noop;
mod vm_power;

use hyperfleet_core::{
    app::App,
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    outcome::Finish,
    store::Store,
};
use tokio_util::sync::CancellationToken;

use crate::libvirt::Hypervisor;

/// What a job body may use.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub app: App,
    pub store: Store,
    pub hypervisor: std::sync::Arc<Hypervisor>,
    pub host: String,
    /// Cancelled when a user asked to cancel this operation; jobs check it at safe points.
    pub cancel: CancellationToken,
    pub health: std::sync::Arc<hyperfleet_core::settings::HealthSettings>,
    /// `[backups]`, its `dir` resolved.
    pub backups: std::sync::Arc<hyperfleet_core::settings::BackupSettings>,
    pub dirs: crate::system::WatchedDirs,
    pub notifier: std::sync::Arc<crate::alerts::Notifier>,
}

/// One kind of work (or a family of kinds, like the VM power actions).
pub trait Job {
    /// The operation kinds this job carries out.
    const KINDS: &'static [OperationKind];
    /// Its parameters, as stored in the operation.
    type Params: serde::de::DeserializeOwned + Send;
    /// One attempt. Idempotent: an attempt after a lost one finds the work
    /// done and says so instead of doing it again.
    fn run(ctx: &JobContext, op: &Operation, params: Self::Params) -> impl Future<Output = Finish> + Send;
}

/// Every job, in one place.
macro_rules! registry {
    ($($job:ty),+ $(,)?) => {
        /// Runs one attempt of `op` with the job registered for its kind.
        pub async fn run(ctx: &JobContext, op: &Operation) -> Finish {
            if ctx.cancel.is_cancelled() {
                return Finish::Cancelled("cancel requested before the attempt started".into());
            }
            $(if <$job as Job>::KINDS.contains(&op.kind) {
                return attempt::<$job>(ctx, op).await;
            })+
            Finish::Failed(JobFailure::new(ErrorClass::Permanent, "not_implemented", op.kind.as_str()))
        }

        /// The kinds some job carries out, once per job that does.
        pub fn served_kinds() -> Vec<OperationKind> {
            [$(<$job as Job>::KINDS),+].concat()
        }
    };
}

registry!(
    noop::Noop,
    vm_power::VmPower,
    health_run::HealthRun,
    alert_deliver::AlertDeliver,
    ledger_prune::LedgerPrune,
    backup_create::BackupCreate,
    backup_verify::BackupVerify,
    backup_prune::BackupPrune,
    backup_delete::BackupDelete,
);

async fn attempt<J: Job>(ctx: &JobContext, op: &Operation) -> Finish {
    match serde_json::from_value::<J::Params>(op.params.clone()) {
        Ok(params) => J::run(ctx, op, params).await,
        Err(e) => Finish::Failed(JobFailure::new(ErrorClass::Permanent, "invalid_parameters", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_job() {
        let served = served_kinds();
        for kind in OperationKind::ALL {
            let n = served.iter().filter(|k| *k == kind).count();
            assert_eq!(n, 1, "{} is served by {n} jobs", kind.as_str());
        }
    }
}
