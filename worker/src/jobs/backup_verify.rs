//! `backup.verify`: verifies one complete backup at a level and records the
//! result with the alert it implies. A bad backup is a successful operation
//! whose result says `failed` (the verification ran); the operation fails
//! only when it could not verify.

use std::path::Path;

use hyperfleet_core::{
    backup::{BackupState, VerifyParams},
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    outcome::Finish,
    store::NewVerification,
};
use serde_json::json;

use super::{
    Job, JobContext,
    backup_create::{tools, transient},
};
use crate::backup::verify;

pub struct BackupVerify;

impl Job for BackupVerify {
    const KINDS: &'static [OperationKind] = &[OperationKind::BackupVerify];
    type Params = VerifyParams;

    async fn run(ctx: &JobContext, op: &Operation, params: VerifyParams) -> Finish {
        match run(ctx, op, &params).await {
            Ok(result) => Finish::Succeeded(result),
            Err(f) => Finish::Failed(f),
        }
    }
}

async fn run(ctx: &JobContext, op: &Operation, params: &VerifyParams) -> Result<serde_json::Value, JobFailure> {
    let backup = match ctx.store.backup(params.backup_id).await {
        Ok(b) => b,
        Err(hyperfleet_core::Error::NotFound { .. }) => {
            let message = format!("backup {} does not exist", params.backup_id);
            return Err(JobFailure::new(ErrorClass::Permanent, "backup_not_found", message));
        }
        Err(e) => return Err(transient(&e)),
    };
    let (BackupState::Complete, Some(sha256)) = (backup.state, backup.manifest_sha256.as_deref()) else {
        let message = format!("backup {} is {}: only complete backups are verified", backup.id, backup.state);
        return Err(JobFailure::new(ErrorClass::Permanent, "backup_not_complete", message));
    };
    if backup.host != ctx.host {
        let message = format!("backup {} is on host {}, not {}", backup.id, backup.host, ctx.host);
        return Err(JobFailure::new(ErrorClass::Permanent, "wrong_host", message));
    }
    let started_at = ctx.store.now();
    let report = verify::verify(&tools(ctx), Path::new(&backup.dir), sha256, params.level).await?;
    let v = NewVerification { backup: backup.id, operation: op.id, started_at, report: &report };
    ctx.app.record_verification(&backup, v).await.map_err(|e| transient(&e))?;
    Ok(json!({
        "backup_id": backup.id,
        "level": report.level,
        "result": report.result,
        "code": report.code(),
        "findings": report.findings,
        "warnings": report.warnings,
    }))
}
