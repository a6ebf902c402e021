//! `backup.prune`: deletes a VM's backups past their retention on this host
//! (the plan is `hyperfleet_core::backup_prune::plan`). Each backup's
//! directory is removed first, then its row is marked deleted, so a retry
//! after a crash between the two finds the directory gone and records it.
//! Partial directories of the VM (from attempts whose worker died for good)
//! are removed too: none can be in progress, a prune waits its turn behind
//! the VM's other operations. `dry_run` only reports the plan.

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
        let base = ctx.backups.dir.clone().unwrap_or_else(|| "backups".into());
        let partials = match remove_partials(&base.join(&params.vm)) {
            Ok(p) => p,
            Err(e) => return Finish::Failed(files::io_failure("removing partial backups", &e)),
        };
        Finish::Succeeded(
            json!({ "dry_run": false, "keep": kept, "deleted": plan.remove, "partials_removed": partials }),
        )
    }
}

/// Removes `<id>.partial/` directories and `<id>.backup.xml` files left in `vm_dir`; returns their names.
fn remove_partials(vm_dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(vm_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") {
            files::remove_dir(&entry.path())?;
        } else if name.ends_with(".backup.xml") {
            std::fs::remove_file(entry.path())?;
        } else {
            continue;
        }
        removed.push(name);
    }
    removed.sort();
    Ok(removed)
}
