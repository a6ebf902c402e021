//! `ledger.prune`: deletes finished operations, health runs and resolved
//! alerts past their retention (`[retention]`), in bounded batches.

use hyperfleet_core::{
    operation::{ErrorClass, JobFailure, NoParams, Operation, OperationKind},
    outcome::Finish,
};

use super::{Job, JobContext};

pub struct LedgerPrune;

impl Job for LedgerPrune {
    const KINDS: &'static [OperationKind] = &[OperationKind::LedgerPrune];
    type Params = NoParams;

    async fn run(ctx: &JobContext, _op: &Operation, _params: NoParams) -> Finish {
        match ctx.app.prune().await {
            Ok(report) => {
                tracing::info!(?report, "pruned the ledger");
                Finish::Succeeded(serde_json::to_value(report).unwrap_or_default())
            }
            Err(e) => Finish::Failed(JobFailure::new(ErrorClass::Transient, "prune_failed", e.to_string())),
        }
    }
}
