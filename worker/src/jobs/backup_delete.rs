//! `backup.delete`: removes one backup's directory from this host, then marks
//! it deleted (a retry after a crash between the two finds the directory
//! gone and records it; one that finds it already deleted says so).

use std::path::Path;

use hyperfleet_core::{
    backup::{BackupState, DeleteParams},
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    outcome::Finish,
};
use serde_json::json;

use super::{Job, JobContext, backup_create::transient};
use crate::backup::files;

pub struct BackupDelete;

impl Job for BackupDelete {
    const KINDS: &'static [OperationKind] = &[OperationKind::BackupDelete];
    type Params = DeleteParams;

    async fn run(ctx: &JobContext, _op: &Operation, params: DeleteParams) -> Finish {
        let b = match ctx.store.backup(params.backup_id).await {
            Ok(b) => b,
            Err(e @ hyperfleet_core::Error::NotFound { .. }) => {
                return Finish::Failed(JobFailure::new(ErrorClass::Permanent, "backup_not_found", e.to_string()));
            }
            Err(e) => return Finish::Failed(transient(&e)),
        };
        match b.state {
            BackupState::Deleted => {
                return Finish::Succeeded(json!({ "backup_id": b.id, "note": "already deleted" }));
            }
            BackupState::Complete if b.host == ctx.host => {}
            _ => {
                let message = format!("backup {} is {} on host {}", b.id, b.state, b.host);
                return Finish::Failed(JobFailure::new(ErrorClass::Permanent, "backup_not_complete", message));
            }
        }
        if let Err(e) = files::remove_dir(Path::new(&b.dir)) {
            return Finish::Failed(files::io_failure(&format!("removing backup {}", b.id), &e));
        }
        match ctx.app.backup_deleted(b.id).await {
            Ok(()) => Finish::Succeeded(json!({ "backup_id": b.id, "dir": b.dir })),
            Err(e) => Finish::Failed(transient(&e)),
        }
    }
}
