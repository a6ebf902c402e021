//! `backup.verify`: verifies one complete backup at a level — or, without a
//! backup, plans: every complete backup on this host never verified or
//! `outdated`, oldest first, at most at level `image` but for the newest of
//! each VM's, which is boot-tested when the level is `boot` — and records
//! each result with the alert it implies. A bad backup is a successful operation whose result says
//! `failed` (the verification ran); the operation fails only when it could
//! not verify.

use std::path::Path;

use hyperfleet_core::{
    backup::{BackupState, VerifyLevel, VerifyParams, VerifyReport, VerifyResult},
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    outcome::Finish,
    store::{BackupRecord, NewVerification},
};
use serde_json::json;

use super::{
    Job, JobContext,
    backup_create::{tools, transient},
};
use crate::backup::{boot::BootOptions, verify};

pub struct BackupVerify;

impl Job for BackupVerify {
    const KINDS: &'static [OperationKind] = &[OperationKind::BackupVerify];
    type Params = VerifyParams;

    async fn run(ctx: &JobContext, op: &Operation, params: VerifyParams) -> Finish {
        let result = match params.backup_id {
            Some(id) => one(ctx, op, id, &params).await,
            None => planned(ctx, op, &params).await,
        };
        match result {
            Ok(Some(result)) => Finish::Succeeded(result),
            Ok(None) => Finish::Cancelled("cancel requested; the verification did not finish".into()),
            Err(f) => Finish::Failed(f),
        }
    }
}

async fn one(
    ctx: &JobContext,
    op: &Operation,
    id: hyperfleet_core::BackupId,
    params: &VerifyParams,
) -> Result<Option<serde_json::Value>, JobFailure> {
    let backup = match ctx.store.backup(id).await {
        Ok(b) => b,
        Err(hyperfleet_core::Error::NotFound { .. }) => {
            let message = format!("backup {id} does not exist");
            return Err(JobFailure::new(ErrorClass::Permanent, "backup_not_found", message));
        }
        Err(e) => return Err(transient(&e)),
    };
    if backup.state != BackupState::Complete {
        let message = format!("backup {} is {}: only complete backups are verified", backup.id, backup.state);
        return Err(JobFailure::new(ErrorClass::Permanent, "backup_not_complete", message));
    }
    if backup.host != ctx.host {
        let message = format!("backup {} is on host {}, not {}", backup.id, backup.host, ctx.host);
        return Err(JobFailure::new(ErrorClass::Permanent, "wrong_host", message));
    }
    let Some(report) = verify_and_record(ctx, op, &backup, params, params.level).await? else {
        return Ok(None);
    };
    Ok(Some(json!({
        "backup_id": backup.id,
        "level": report.level,
        "result": report.result,
        "code": report.code(),
        "findings": report.findings,
        "warnings": report.warnings,
        "boot": report.boot,
    })))
}

/// Verifies what the plan names; one backup that cannot be verified does not stop the others.
async fn planned(
    ctx: &JobContext,
    op: &Operation,
    params: &VerifyParams,
) -> Result<Option<serde_json::Value>, JobFailure> {
    let plan = ctx.app.verification_plan(&ctx.host).await.map_err(|e| transient(&e))?;
    let (mut ok, mut failed, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for (i, backup) in plan.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            return Ok(None);
        }
        // The plan is oldest first: the VM's newest is the last of its in the plan.
        let newest = !plan[i + 1..].iter().any(|later| later.vm == backup.vm);
        let level = if newest { params.level } else { params.level.min(VerifyLevel::Image) };
        match verify_and_record(ctx, op, backup, params, level).await {
            Ok(None) => return Ok(None),
            Ok(Some(r)) if r.result == VerifyResult::Ok => ok.push(backup.id),
            Ok(Some(r)) => failed.push(json!({ "backup_id": backup.id, "vm": backup.vm, "code": r.code() })),
            Err(e) => errors.push(format!("backup {}: {e}", backup.id)),
        }
    }
    if !errors.is_empty() {
        // A retry plans again: what was verified now is no longer due.
        return Err(JobFailure::new(ErrorClass::Transient, "verification_incomplete", errors.join("; ")));
    }
    Ok(Some(json!({ "level": params.level, "planned": plan.len(), "ok": ok, "failed": failed })))
}

async fn verify_and_record(
    ctx: &JobContext,
    op: &Operation,
    backup: &BackupRecord,
    params: &VerifyParams,
    level: VerifyLevel,
) -> Result<Option<VerifyReport>, JobFailure> {
    let Some(sha256) = backup.manifest_sha256.as_deref() else {
        let message = format!("backup {} has no manifest hash in the ledger", backup.id);
        return Err(JobFailure::new(ErrorClass::Permanent, "backup_not_complete", message));
    };
    let started_at = ctx.store.now();
    let boot = BootOptions::new(&ctx.backups, params.boot_marker.as_deref(), params.boot_timeout_s)?;
    let dir = Path::new(&backup.dir);
    let Some(report) = verify::verify(&tools(ctx), dir, sha256, level, &boot, &ctx.cancel).await? else {
        return Ok(None);
    };
    if report.result == VerifyResult::Failed {
        // A prune (of the VM, in its own turn) may have deleted it meanwhile: that is no bad backup.
        let now = ctx.store.backup(backup.id).await.map_err(|e| transient(&e))?;
        if now.state != BackupState::Complete {
            return Ok(Some(report));
        }
    }
    let v = NewVerification { backup: backup.id, operation: op.id, started_at, report: &report };
    ctx.app.record_verification(backup, v).await.map_err(|e| transient(&e))?;
    Ok(Some(report))
}
