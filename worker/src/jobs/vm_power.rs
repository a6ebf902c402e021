//! `vm.start|shutdown|reboot|destroy|suspend|resume` through libvirt.
//!
//! Shutdown is a request the guest may ignore: it waits up to `timeout_s` for
//! SHUTOFF and then either fails with class `timeout` (the VM keeps running)
//! or, with `force`, destroys it and says so in the result.

use std::time::{Duration, Instant};

use hyperfleet_core::{
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    outcome::Finish,
    vm::{PowerParams, VmAction, VmState},
};
use serde_json::json;

use super::{Job, JobContext};

const SHUTDOWN_POLL: Duration = Duration::from_millis(250);

pub struct VmPower;

impl Job for VmPower {
    const KINDS: &'static [OperationKind] = &[
        OperationKind::VmStart,
        OperationKind::VmShutdown,
        OperationKind::VmReboot,
        OperationKind::VmDestroy,
        OperationKind::VmSuspend,
        OperationKind::VmResume,
    ];
    type Params = PowerParams;

    async fn run(ctx: &JobContext, op: &Operation, params: PowerParams) -> Finish {
        match op.kind.vm_action() {
            Some(action) => power(ctx, op, action, params).await,
            None => Finish::Failed(JobFailure::new(ErrorClass::Permanent, "not_implemented", op.kind.as_str())),
        }
    }
}

async fn power(ctx: &JobContext, op: &Operation, action: VmAction, params: PowerParams) -> Finish {
    let Some(vm) = op.vm.clone() else {
        return Finish::Failed(JobFailure::new(
            ErrorClass::Permanent,
            "invalid_parameters",
            "VM operation without a VM",
        ));
    };
    let outcome = match precondition(ctx, &vm, action, op.attempt_count).await {
        Err(failure) => Err(failure),
        Ok(Ready::AlreadyDone(state)) => Ok(Done::Ok {
            result: json!({
                "action": action.as_str(),
                "note": format!("VM `{vm}` was already {state}: an earlier attempt got there; nothing done again"),
            }),
        }),
        Ok(Ready::Go) if action == VmAction::Shutdown => shutdown(ctx, &vm, &params).await,
        Ok(Ready::Go) => ctx.hypervisor.with_domain(&vm, move |d| act(d, action)).await.map(|()| Done::plain(action)),
    };
    refresh_inventory(ctx, &vm).await;
    match outcome {
        Ok(Done::Ok { result }) => Finish::Succeeded(result),
        Ok(Done::Cancelled(why)) => Finish::Cancelled(why),
        Err(failure) => Finish::Failed(failure),
    }
}

enum Done {
    Ok { result: serde_json::Value },
    Cancelled(String),
}

impl Done {
    fn plain(action: VmAction) -> Self {
        Done::Ok { result: json!({ "action": action.as_str() }) }
    }
}

enum Ready {
    Go,
    /// A retry found the VM already where the action leads.
    AlreadyDone(VmState),
}

/// Checks the VM's state before acting, so a wrong state is the same permanent
/// `invalid_vm_state` on every driver (libvirt's test driver reports some as
/// internal errors, QEMU as invalid operations). A retry (attempt > 1) that
/// finds the VM already in the action's end state succeeds without acting
/// again: the earlier attempt's worker died after acting but before recording.
async fn precondition(ctx: &JobContext, vm: &str, action: VmAction, attempt: i32) -> Result<Ready, JobFailure> {
    let state = ctx.hypervisor.state(vm).await?;
    let goal = match action {
        VmAction::Start | VmAction::Resume => Some(VmState::Running),
        VmAction::Shutdown | VmAction::Destroy => Some(VmState::Shutoff),
        VmAction::Suspend => Some(VmState::Paused),
        VmAction::Reboot => None,
    };
    if attempt > 1 && goal == Some(state) {
        return Ok(Ready::AlreadyDone(state));
    }
    let ok = match action {
        VmAction::Start => matches!(state, VmState::Shutoff | VmState::Crashed),
        VmAction::Shutdown | VmAction::Reboot => {
            matches!(state, VmState::Running | VmState::Blocked | VmState::Paused | VmState::Shutdown)
        }
        VmAction::Destroy => state != VmState::Shutoff,
        VmAction::Suspend => matches!(state, VmState::Running | VmState::Blocked),
        VmAction::Resume => state == VmState::Paused,
    };
    if ok {
        Ok(Ready::Go)
    } else {
        Err(JobFailure::new(
            ErrorClass::Permanent,
            "invalid_vm_state",
            format!("cannot {} VM `{vm}`: it is {state}", action.as_str()),
        ))
    }
}

fn act(d: &virt::domain::Domain, action: VmAction) -> Result<(), virt::error::Error> {
    match action {
        VmAction::Start => d.create(),
        VmAction::Reboot => d.reboot(0),
        VmAction::Destroy => d.destroy(),
        VmAction::Suspend => d.suspend(),
        VmAction::Resume => d.resume(),
        VmAction::Shutdown => d.shutdown(),
    }
}

async fn shutdown(ctx: &JobContext, vm: &str, params: &PowerParams) -> Result<Done, JobFailure> {
    let timeout = Duration::from_secs(params.timeout_s.unwrap_or(PowerParams::DEFAULT_SHUTDOWN_TIMEOUT_S).into());
    ctx.hypervisor.with_domain(vm, |d| d.shutdown()).await?;
    let started = Instant::now();
    loop {
        if ctx.hypervisor.state(vm).await? == VmState::Shutoff {
            let waited = started.elapsed().as_secs_f64();
            return Ok(Done::Ok { result: json!({ "action": "shutdown", "forced": false, "waited_s": waited }) });
        }
        if started.elapsed() >= timeout {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(SHUTDOWN_POLL) => {}
            () = ctx.cancel.cancelled() => {
                return Ok(Done::Cancelled("cancel requested while waiting for the guest to shut down; it may still do so".into()));
            }
        }
    }
    let waited = timeout.as_secs();
    if !params.force {
        return Err(JobFailure::new(
            ErrorClass::Timeout,
            "shutdown_timeout",
            format!("the guest did not shut down within {waited} s and is still running (use force to destroy it)"),
        ));
    }
    ctx.hypervisor.with_domain(vm, |d| d.destroy()).await?;
    tracing::warn!(vm, waited, "guest ignored shutdown; destroyed it (force)");
    Ok(Done::Ok {
        result: json!({
            "action": "shutdown",
            "forced": true,
            "waited_s": waited,
            "note": format!("the guest did not shut down within {waited} s; destroyed it because force was set"),
        }),
    })
}

async fn refresh_inventory(ctx: &JobContext, vm: &str) {
    let refreshed = match ctx.hypervisor.describe(vm).await {
        Ok(record) => ctx.store.refresh_vm(&ctx.host, vm, record.as_ref()).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = refreshed {
        tracing::warn!(vm, error = %e, "could not refresh the inventory after the operation");
    }
}
