//! `noop`: a diagnostic that exercises the queue without a hypervisor. It
//! sleeps `sleep_ms` and fails its first `fail_times` attempts transiently.

use hyperfleet_core::{
    operation::{ErrorClass, JobFailure, NoopParams, Operation, OperationKind},
    outcome::Finish,
};
use serde_json::json;

use super::{Job, JobContext};

pub struct Noop;

impl Job for Noop {
    const KINDS: &'static [OperationKind] = &[OperationKind::Noop];
    type Params = NoopParams;

    async fn run(ctx: &JobContext, op: &Operation, params: NoopParams) -> Finish {
        if params.sleep_ms > 0 {
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(params.sleep_ms)) => {}
                () = ctx.cancel.cancelled() => return Finish::Cancelled("cancelled while sleeping".into()),
            }
        }
        if op.attempt_count <= params.fail_times as i32 {
            return Finish::Failed(JobFailure::new(
                ErrorClass::Transient,
                "noop_failure",
                format!("attempt {} of the first {} fails on purpose", op.attempt_count, params.fail_times),
            ));
        }
        Finish::Succeeded(json!({ "slept_ms": params.sleep_ms, "attempt": op.attempt_count }))
    }
}
