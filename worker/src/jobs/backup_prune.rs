//! `backup.prune`: deletes a VM's backups past their retention on this host
//! (the plan is `hyperfleet_core::backup_prune::plan`). Each backup's
//! directory is removed first, then its row is marked deleted, so a retry
//! after a crash between the two finds the directory gone and records it.
//! `dry_run` only reports the plan.

use std::path::Path;

use hyperfleet_core::{
    backup_prune::PruneParams,
    operation::{Operation, OperationKind},
    outcome::Finish,
};
use serde_json::json;

use super::{Job, JobContext, backup_create::transient};
use crate::backup::files;

pub struct BackupPrune;

impl Job for BackupPrune {
    const KINDS: &'static [OperationKind] = &[OperationKind::BackupPrune];
    type Params = PruneParams;

    async fn run(ctx: &JobContext, _op: &Operation, params: PruneParams) -> Finish {
        let (plan, records) = match ctx.app.prune_plan(&ctx.host, &params).await {
            Ok(p) => p,
            Err(e) => return Finish::Failed(transient(&e)),
        };
        let kept: Vec<_> = plan.keep.iter().map(|(id, why)| json!({ "backup_id": id, "reason": why })).collect();
        if params.dry_run {
            return Finish::Succeeded(json!({ "dry_run": true, "keep": kept, "delete": plan.remove }));
        }
        for id in &plan.remove {
            let Some(record) = records.iter().find(|r| r.id == *id) else { continue };
            if let Err(e) = files::remove_dir(Path::new(&record.dir)) {
                return Finish::Failed(files::io_failure(&format!("removing backup {id}"), &e));
            }
            if let Err(e) = ctx.app.backup_deleted(*id).await {
                return Finish::Failed(transient(&e));
            }
        }
        Finish::Succeeded(json!({ "dry_run": false, "keep": kept, "deleted": plan.remove }))
    }
}
