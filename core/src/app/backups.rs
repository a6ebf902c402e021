//! Backups: asking for one, recording what the worker wrote and what a
//! verification found — with the alert it implies, in the same transaction.

use super::{App, Origin};
use crate::{
    BackupId, Error, OperationId, Result, Timestamp,
    alert::sources::{self, BackupVerified},
    backup::{BackupState, CreateParams, DeleteParams, Manifest, VerificationState, VerifyParams, verification_state},
    backup_prune::{Candidate, PruneParams, PrunePlan, plan},
    operation::OperationKind,
    store::{BackupFilter, BackupRecord, NewVerification, Page, Submitted, VerificationRecord},
    vm::VmName,
};

/// A backup with its derived verification state.
#[derive(Debug, Clone)]
pub struct BackupView {
    pub record: BackupRecord,
    pub verification: VerificationState,
}

impl App {
    /// Enqueues a `backup.create` of `vm` on its host (FIFO with the VM's other operations).
    pub async fn backup_create(&self, vm: &VmName, host: Option<&str>, origin: Origin) -> Result<Submitted> {
        let record = self.store.vm(vm.as_str(), host).await?;
        let params = serde_json::to_value(CreateParams { vm: record.name.clone() }).map_err(Error::internal)?;
        let new = origin.operation(OperationKind::BackupCreate, Some(record.host), Some(record.name), params);
        self.store.submit(new).await
    }

    /// Enqueues a `backup.verify` of a complete backup, on its host.
    pub async fn backup_verify(&self, id: BackupId, params: VerifyParams, origin: Origin) -> Result<Submitted> {
        params.validate()?;
        let b = self.store.backup(id).await?;
        if b.state != BackupState::Complete {
            return Err(Error::conflict("backup_not_complete", format!("backup {id} is {}", b.state)));
        }
        let params = serde_json::to_value(VerifyParams { backup_id: Some(id), ..params }).map_err(Error::internal)?;
        self.store.submit(origin.operation(OperationKind::BackupVerify, Some(b.host), Some(b.vm), params)).await
    }

    /// Enqueues a `backup.delete` of a complete backup, on its host.
    pub async fn backup_delete(&self, id: BackupId, origin: Origin) -> Result<Submitted> {
        let b = self.store.backup(id).await?;
        if b.state != BackupState::Complete {
            return Err(Error::conflict("backup_not_complete", format!("backup {id} is {}", b.state)));
        }
        let params = serde_json::to_value(DeleteParams { backup_id: id }).map_err(Error::internal)?;
        self.store.submit(origin.operation(OperationKind::BackupDelete, Some(b.host), Some(b.vm), params)).await
    }

    /// Enqueues a `backup.prune` of `vm`'s backups on its host.
    pub async fn backup_prune(&self, params: PruneParams, host: Option<&str>, origin: Origin) -> Result<Submitted> {
        params.validate()?;
        let record = self.store.vm(&params.vm, host).await?;
        let params =
            serde_json::to_value(PruneParams { vm: record.name.clone(), ..params }).map_err(Error::internal)?;
        self.store
            .submit(origin.operation(OperationKind::BackupPrune, Some(record.host), Some(record.name), params))
            .await
    }

    /// What a prune of `vm`'s complete backups on `host` keeps and deletes, with their records.
    pub async fn prune_plan(&self, host: &str, p: &PruneParams) -> Result<(PrunePlan, Vec<BackupRecord>)> {
        let filter = BackupFilter {
            host: Some(host.to_owned()),
            vm: Some(p.vm.clone()),
            state: Some(BackupState::Complete),
            verification: None,
            cursor: None,
            limit: 500,
        };
        let mut records = Vec::new();
        let mut candidates = Vec::new();
        let mut page = self.store.backups(&filter).await?;
        loop {
            for r in page.items {
                let last = self.store.verifications(r.id).await?.into_iter().next();
                let verified_ok = last.is_some_and(|v| v.result == crate::backup::VerifyResult::Ok);
                candidates.push(Candidate { id: r.id, created_at: r.created_at, verified_ok });
                records.push(r);
            }
            let Some(cursor) = page.next_cursor else { break };
            page = self.store.backups(&BackupFilter { cursor: Some(cursor), ..filter.clone() }).await?;
        }
        Ok((plan(&candidates, p), records))
    }

    /// What a verification without a backup verifies on `host`: every complete
    /// backup never verified or whose last ok verification is outdated, oldest first.
    pub async fn verification_plan(&self, host: &str) -> Result<Vec<BackupRecord>> {
        let mut out = Vec::new();
        for state in [VerificationState::None, VerificationState::Outdated] {
            let filter = BackupFilter {
                host: Some(host.to_owned()),
                state: Some(BackupState::Complete),
                limit: 500,
                ..BackupFilter::default()
            };
            let mut page = self.backups(filter.clone(), Some(state)).await?;
            loop {
                out.extend(page.items.into_iter().map(|v| v.record));
                let Some(cursor) = page.next_cursor else { break };
                page = self.backups(BackupFilter { cursor: Some(cursor), ..filter.clone() }, Some(state)).await?;
            }
        }
        out.sort_by_key(|b| b.id);
        Ok(out)
    }

    /// A pruned backup's files are gone from its host.
    pub async fn backup_deleted(&self, id: BackupId) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.delete_backup(id).await?;
        tx.commit().await
    }

    /// Where a scheduled backup operation runs: the VM's host (from the
    /// inventory) or the backup's host; other kinds run where they were asked.
    pub(crate) async fn backup_target(
        &self,
        kind: OperationKind,
        host: Option<&str>,
        params: &serde_json::Value,
    ) -> Result<Option<(String, String)>> {
        match kind {
            OperationKind::BackupCreate => {
                let p: CreateParams = serde_json::from_value(params.clone()).map_err(Error::internal)?;
                let vm = self.store.vm(&p.vm, host).await?;
                Ok(Some((vm.host, vm.name)))
            }
            OperationKind::BackupPrune => {
                let p: PruneParams = serde_json::from_value(params.clone()).map_err(Error::internal)?;
                let vm = self.store.vm(&p.vm, host).await?;
                Ok(Some((vm.host, vm.name)))
            }
            OperationKind::BackupVerify => {
                let p: VerifyParams = serde_json::from_value(params.clone()).map_err(Error::internal)?;
                // Without a backup it plans on each host (the fan-out rule).
                let Some(id) = p.backup_id else { return Ok(None) };
                let b = self.store.backup(id).await?;
                Ok(Some((b.host, b.vm)))
            }
            _ => Ok(None),
        }
    }

    /// The worker starts writing backup `id` (idempotent for a retry).
    pub async fn backup_started(&self, id: BackupId, op: OperationId, host: &str, vm: &str, dir: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.insert_backup(id, op, host, vm, dir).await?;
        tx.commit().await
    }

    /// The backup's directory is complete on disk: its manifest and the manifest file's sha256.
    pub async fn backup_completed(&self, id: BackupId, manifest: &Manifest, sha256: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.complete_backup(id, manifest, sha256).await?;
        tx.commit().await
    }

    /// The backup could not be written, for good.
    pub async fn backup_failed(&self, id: BackupId, error: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.fail_backup(id, error).await?;
        tx.commit().await
    }

    /// Records a verification and the alert it implies (raised when it
    /// failed, resolved when the VM's newest backup verified ok), in one transaction.
    pub async fn record_verification(&self, b: &BackupRecord, v: NewVerification<'_>) -> Result<()> {
        let newest = self.store.newest_backup(&b.host, &b.vm).await?.is_some_and(|n| n.id == b.id);
        let mut tx = self.store.begin().await?;
        tx.insert_verification(v).await?;
        let fact = BackupVerified { host: &b.host, vm: &b.vm, backup: b.id, report: v.report, newest };
        if let Some(change) = sources::backup_verified(&fact) {
            tx.apply_alert(&change).await?;
        }
        tx.commit().await
    }

    /// The backup health checks of every VM with a complete backup on `host`.
    pub async fn backup_health(&self, host: &str, max_age_h: u32) -> Result<Vec<crate::health::Measurement>> {
        let mut out = Vec::new();
        for record in self.store.newest_backups(host).await? {
            let (view, _) = self.view(record).await?;
            let r = &view.record;
            out.extend(crate::backup_health::vm_checks(&r.vm, r.created_at, view.verification, self.now(), max_age_h));
        }
        Ok(out)
    }

    /// Backups, newest first; `verification` filters on the derived state.
    pub async fn backups(
        &self,
        filter: BackupFilter,
        verification: Option<VerificationState>,
    ) -> Result<Page<BackupView, BackupId>> {
        let cutoff = self.now().minus(std::time::Duration::from_secs(86_400 * u64::from(self.reverify_after_days)));
        let filter = BackupFilter { verification: verification.map(|v| (v, cutoff)), ..filter };
        let page = self.store.backups(&filter).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for record in page.items {
            items.push(self.view(record).await?.0);
        }
        Ok(Page { items, next_cursor: page.next_cursor })
    }

    /// One backup with its verification history, newest first.
    pub async fn backup(&self, id: BackupId) -> Result<(BackupView, Vec<VerificationRecord>)> {
        let record = self.store.backup(id).await?;
        self.view(record).await
    }

    async fn view(&self, record: BackupRecord) -> Result<(BackupView, Vec<VerificationRecord>)> {
        let history = self.store.verifications(record.id).await?;
        let last: Option<(crate::backup::VerifyResult, Timestamp)> = history.first().map(|v| (v.result, v.finished_at));
        let verification = verification_state(last, self.now(), self.reverify_after_days);
        Ok((BackupView { record, verification }, history))
    }
}
