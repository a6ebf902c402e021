//! `/api/v1/backups`: backups of VMs and their verifications; creating and
//! verifying are operations (202 + Location).

use hyperfleet_core::{
    BackupId,
    backup::{BackupState, VerificationState, VerifyLevel, VerifyParams},
    backup_prune::PruneParams,
    store::BackupFilter,
    vm::VmName,
};
use poem_openapi::{
    Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};

use crate::{
    AppState, Tag,
    auth::{AdminAuth, OperatorAuth, ViewerAuth},
    backup_views::{BackupPageView, BackupView, VerificationView},
    error::ApiResult,
    operations::page_limit,
    submit::Enqueued,
};

pub struct BackupsApi {
    pub state: AppState,
}

/// Options of a backup; none yet, an empty object is accepted.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct BackupRequest {}

/// How deeply to verify: `level` `checksum` (default) checks the manifest
/// against the ledger and every file's size and sha256; `image` also runs
/// `qemu-img check` on every disk; `boot` also boots throw-away overlays of
/// the disks in a fresh domain without network, host devices or shared
/// filesystems, and waits for `boot_marker` on its serial console.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct VerifyRequest {
    pub level: Option<VerifyLevel>,
    /// Level `boot`: a regular expression searched in the serial console's text (default `backups.boot_marker`).
    #[oai(validator(min_length = 1, max_length = 256))]
    pub boot_marker: Option<String>,
    /// Level `boot`: seconds the guest has to print it (default `backups.boot_timeout_s`).
    #[oai(validator(minimum(value = "1"), maximum(value = "3600")))]
    pub boot_timeout_s: Option<u32>,
}

/// Which backups of a VM to keep; the others are deleted from its host. As in
/// Proxmox Backup Server: `keep_last` newest, then the newest of each of the
/// last `keep_daily` days, `keep_weekly` ISO weeks, `keep_monthly` months,
/// `keep_yearly` years (UTC), periods already covered by a kept backup
/// skipped. The VM's newest backup whose last verification is ok is always kept.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PruneRequest {
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub vm: String,
    /// The VM's host; needed only when the name exists on several hosts.
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub host: Option<String>,
    #[oai(validator(maximum(value = "100000")))]
    pub keep_last: Option<u32>,
    #[oai(validator(maximum(value = "100000")))]
    pub keep_daily: Option<u32>,
    #[oai(validator(maximum(value = "100000")))]
    pub keep_weekly: Option<u32>,
    #[oai(validator(maximum(value = "100000")))]
    pub keep_monthly: Option<u32>,
    #[oai(validator(maximum(value = "100000")))]
    pub keep_yearly: Option<u32>,
    /// Only report what would be deleted (the operation's result).
    pub dry_run: Option<bool>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Backups")]
impl BackupsApi {
    /// Back up a VM: a live push backup when it runs, `qemu-img convert` when it is shut off.
    #[oai(path = "/vms/:name/backups", method = "post", operation_id = "backup_create")]
    async fn create(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        /// The VM's host; needed only when the name exists on several hosts.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        host: Query<Option<String>>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        _body: Json<Option<BackupRequest>>,
    ) -> ApiResult<Enqueued> {
        let vm = VmName::parse(&name)?;
        let origin = self.state.origin(&auth.0, key.0)?;
        let submitted = self.state.app.backup_create(&vm, host.0.as_deref(), origin).await?;
        Ok(Enqueued::answer(&self.state.app, submitted).await?)
    }

    /// List backups, newest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/backups", method = "get", operation_id = "backup_list")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        /// Only backups of this VM.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        vm: Query<Option<String>>,
        /// Only backups on this host.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        host: Query<Option<String>>,
        /// Only backups in this state.
        state: Query<Option<BackupState>>,
        /// Only backups whose verification is `none`, `ok`, `failed` or `outdated`.
        verification: Query<Option<VerificationState>>,
        /// Page size, 1-500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<uuid::Uuid>>,
    ) -> ApiResult<Json<BackupPageView>> {
        let filter = BackupFilter {
            host: host.0,
            vm: vm.0,
            state: state.0,
            verification: None,
            cursor: cursor.0.map(BackupId),
            limit: page_limit(limit.0)?,
        };
        let page = self.state.app.backups(filter, verification.0).await?;
        Ok(Json(BackupPageView {
            items: page.items.into_iter().map(BackupView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// Prune a VM's backups past their retention (an operation on its host; its result lists what was kept and deleted).
    #[oai(path = "/backups/prune", method = "post", operation_id = "backup_prune")]
    async fn prune(
        &self,
        auth: AdminAuth,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        body: Json<PruneRequest>,
    ) -> ApiResult<Enqueued> {
        let b = body.0;
        let params = PruneParams {
            vm: b.vm,
            keep_last: b.keep_last.unwrap_or(0),
            keep_daily: b.keep_daily.unwrap_or(0),
            keep_weekly: b.keep_weekly.unwrap_or(0),
            keep_monthly: b.keep_monthly.unwrap_or(0),
            keep_yearly: b.keep_yearly.unwrap_or(0),
            dry_run: b.dry_run.unwrap_or(false),
        };
        let origin = self.state.origin(&auth.0, key.0)?;
        let submitted = self.state.app.backup_prune(params, b.host.as_deref(), origin).await?;
        Ok(Enqueued::answer(&self.state.app, submitted).await?)
    }

    /// Delete one backup from its host (an operation; the record stays, `deleted`, with its history).
    #[oai(path = "/backups/:id", method = "delete", operation_id = "backup_delete")]
    async fn delete(
        &self,
        auth: AdminAuth,
        id: Path<uuid::Uuid>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
    ) -> ApiResult<Enqueued> {
        let origin = self.state.origin(&auth.0, key.0)?;
        let submitted = self.state.app.backup_delete(BackupId(id.0), origin).await?;
        Ok(Enqueued::answer(&self.state.app, submitted).await?)
    }

    /// One backup with its manifest (every file with its size and sha256) and its verification history.
    #[oai(path = "/backups/:id", method = "get", operation_id = "backup_get")]
    async fn get(&self, _auth: ViewerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<BackupView>> {
        let (backup, history) = self.state.app.backup(BackupId(id.0)).await?;
        let manifest = backup.record.manifest.as_ref().map(|m| m.0.clone());
        let mut view = BackupView::from(backup);
        view.manifest = manifest;
        view.verifications = Some(history.into_iter().map(VerificationView::from).collect());
        Ok(Json(view))
    }

    /// Verify a complete backup on its host.
    #[oai(path = "/backups/:id/verify", method = "post", operation_id = "backup_verify")]
    async fn verify(
        &self,
        auth: OperatorAuth,
        id: Path<uuid::Uuid>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        body: Json<Option<VerifyRequest>>,
    ) -> ApiResult<Enqueued> {
        let b = body.0.unwrap_or(VerifyRequest { level: None, boot_marker: None, boot_timeout_s: None });
        let params = VerifyParams {
            backup_id: Some(BackupId(id.0)),
            level: b.level.unwrap_or(VerifyLevel::Checksum),
            boot_marker: b.boot_marker,
            boot_timeout_s: b.boot_timeout_s,
        };
        let origin = self.state.origin(&auth.0, key.0)?;
        let submitted = self.state.app.backup_verify(BackupId(id.0), params, origin).await?;
        Ok(Enqueued::answer(&self.state.app, submitted).await?)
    }
}
