//! `backup.create`: a full copy of one VM into `<dir>/<vm>/<id>/`.
//!
//! A running (or paused) VM goes through libvirt's push backup; a shut-off
//! one through `qemu-img convert`, disk by disk (a cancel kills the copy). Everything is written into
//! `<id>.partial/` (removed first on a retry, with any libvirt job an earlier
//! attempt left behind), fsynced, the manifest last, then renamed. An attempt
//! that finds `<id>/` already complete (its predecessor died before
//! recording) records it instead of copying again. A domain's `<nvram>` is
//! copied as `nvram.fd`. The new backup is then
//! verified at `backups.verify_new`.

use std::path::{Path, PathBuf};

use hyperfleet_core::{
    BackupId,
    backup::{BackupMethod, CreateParams, Manifest, ManifestDisk, Versions, sha256_hex},
    operation::{ErrorClass, JobFailure, Operation, OperationKind},
    outcome::Finish,
    store::NewVerification,
    vm::VmState,
};
use serde_json::json;

use super::{Job, JobContext};
use crate::backup::{
    boot::{BootOptions, NVRAM},
    disks::{self, Disk},
    files::{self, Layout, io_failure},
    live,
    tools::Tools,
    verify,
};

pub struct BackupCreate;

impl Job for BackupCreate {
    const KINDS: &'static [OperationKind] = &[OperationKind::BackupCreate];
    type Params = CreateParams;

    async fn run(ctx: &JobContext, op: &Operation, params: CreateParams) -> Finish {
        let id = BackupId(op.id.0);
        let base = ctx.backups.dir.clone().unwrap_or_else(|| PathBuf::from("backups"));
        let layout = Layout::new(&base, &params.vm, id);
        let tools = tools(ctx);
        let outcome = match create(ctx, op, &tools, &params.vm, id, &layout).await {
            Ok(Some(done)) => done,
            Ok(None) => {
                let _ = files::remove_dir(&layout.partial);
                record_failure(ctx, id, "cancelled: cancel requested while backing up").await;
                return Finish::Cancelled("cancel requested while backing up; the partial backup was removed".into());
            }
            Err(failure) => {
                // Nothing half-written stays behind; a retry starts afresh. The
                // backup is marked failed with the operation, if it fails for good.
                let _ = files::remove_dir(&layout.partial);
                return Finish::Failed(failure);
            }
        };
        let (manifest, sha256) = outcome;
        if let Err(e) = ctx.app.backup_completed(id, &manifest, &sha256).await {
            return Finish::Failed(JobFailure::new(ErrorClass::Transient, "backup_record_failed", e.to_string()));
        }
        let verification = match verify_new(ctx, op, &tools, id, &layout.done, &sha256).await {
            Ok(v) => v,
            Err(f) => return Finish::Failed(f),
        };
        Finish::Succeeded(json!({
            "backup_id": id,
            "dir": layout.done,
            "method": manifest.method,
            "size_bytes": manifest.total_size(),
            "files": manifest.files.len(),
            "manifest_sha256": sha256,
            "verification": verification,
        }))
    }
}

pub(super) fn tools(ctx: &JobContext) -> Tools {
    Tools { uri: ctx.hypervisor.uri().to_owned(), timeout: std::time::Duration::from_secs(ctx.backups.tool_timeout_s) }
}

async fn record_failure(ctx: &JobContext, id: BackupId, why: &str) {
    if let Err(e) = ctx.app.backup_failed(id, why).await {
        tracing::warn!(backup = %id, error = %e, "could not record the failed backup");
    }
}

/// Writes the backup; `None` when cancelled.
async fn create(
    ctx: &JobContext,
    op: &Operation,
    tools: &Tools,
    vm: &str,
    id: BackupId,
    layout: &Layout,
) -> Result<Option<(Manifest, String)>, JobFailure> {
    if let Ok(bytes) = std::fs::read(layout.done.join(Manifest::FILE)) {
        let manifest = serde_json::from_slice(&bytes).map_err(|e| {
            JobFailure::new(ErrorClass::Permanent, "manifest_unreadable", format!("an earlier attempt's manifest: {e}"))
        })?;
        return Ok(Some((manifest, sha256_hex(&bytes))));
    }
    let dir = layout.done.to_string_lossy().into_owned();
    ctx.app
        .backup_started(id, op.id, &ctx.host, vm, &dir)
        .await
        .map_err(|e| JobFailure::new(ErrorClass::Transient, "backup_record_failed", e.to_string()))?;
    let method = match ctx.hypervisor.state(vm).await? {
        VmState::Running | VmState::Blocked | VmState::Paused => BackupMethod::Live,
        VmState::Shutoff | VmState::Crashed => BackupMethod::Offline,
        other => {
            return Err(JobFailure::new(
                ErrorClass::Permanent,
                "invalid_vm_state",
                format!("cannot back up VM `{vm}`: it is {other} (a backup needs it running, paused or shut off)"),
            ));
        }
    };
    if method == BackupMethod::Live && op.attempt_count > 1 {
        live::abort_leftover(tools, vm).await;
    }
    files::remove_dir(&layout.partial).map_err(|e| io_failure("removing an earlier partial backup", &e))?;
    std::fs::create_dir_all(layout.partial.join("disks"))
        .map_err(|e| io_failure("creating the backup directory", &e))?;
    let live_xml = domain_xml(ctx, vm, 0).await?;
    let (disks, skipped) =
        disks::disks(&live_xml).map_err(|m| JobFailure::new(ErrorClass::Permanent, "unsupported_disk", m))?;
    match method {
        BackupMethod::Live => {
            if let live::Ended::Cancelled = live::run(tools, vm, &disks, &skipped, &layout.partial, &ctx.cancel).await?
            {
                return Ok(None);
            }
        }
        BackupMethod::Offline => {
            for d in &disks {
                if ctx.cancel.is_cancelled() {
                    return Ok(None);
                }
                // A cancel stops the copy itself: dropping it kills `qemu-img`.
                let target = disk_path(&layout.partial, d);
                tokio::select! {
                    copied = tools.convert(&d.source, &d.format, &target) => copied?,
                    () = ctx.cancel.cancelled() => return Ok(None),
                }
            }
        }
    }
    if ctx.cancel.is_cancelled() {
        return Ok(None);
    }
    // The inactive definition, as libvirt gives it without secrets.
    let inactive = domain_xml(ctx, vm, virt::sys::VIR_DOMAIN_XML_INACTIVE).await?;
    files::write_synced(&layout.partial.join("domain.xml"), inactive.as_bytes())
        .map_err(|e| io_failure("writing domain.xml", &e))?;
    let mut manifest_disks = Vec::new();
    for d in &disks {
        let path = disk_path(&layout.partial, d);
        let virtual_size = tools.virtual_size(&path).await?.map_err(|why| {
            JobFailure::new(
                ErrorClass::Transient,
                "qemu_img_failed",
                format!("reading the new image {}: {why}", d.target),
            )
        })?;
        let rel = format!("disks/{}.qcow2", d.target);
        manifest_disks.push(ManifestDisk {
            target: d.target.clone(),
            path: rel,
            source_format: d.format.clone(),
            virtual_size,
        });
    }
    let mut rel: Vec<String> =
        manifest_disks.iter().map(|d| d.path.clone()).chain(std::iter::once("domain.xml".to_owned())).collect();
    // The firmware's variables (UEFI boot entries, Secure Boot keys): without them an EFI guest may not boot.
    if let Some(vars) =
        disks::nvram(&inactive).map_err(|m| JobFailure::new(ErrorClass::Permanent, "unsupported_disk", m))?
    {
        std::fs::copy(&vars, layout.partial.join(NVRAM)).map_err(|e| io_failure("copying the nvram", &e))?;
        rel.push(NVRAM.to_owned());
    }
    let (partial, stop) = (layout.partial.clone(), ctx.cancel.clone());
    let hashed = tokio::task::spawn_blocking(move || {
        let listed = files::sync_and_hash(&partial, &rel, &stop)?;
        files::sync_path(&partial.join("disks"))?;
        Ok::<_, std::io::Error>(listed)
    })
    .await
    .map_err(|e| JobFailure::new(ErrorClass::Transient, "backup_io", format!("hashing panicked: {e}")))?;
    let hashed = match hashed {
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(None),
        other => other.map_err(|e| io_failure("hashing the backup", &e))?,
    };
    if ctx.cancel.is_cancelled() {
        return Ok(None);
    }
    let manifest = Manifest {
        format: Manifest::FORMAT,
        backup_id: id,
        host: ctx.host.clone(),
        vm: vm.to_owned(),
        method,
        consistency: match method {
            BackupMethod::Live => "crash-consistent".into(),
            BackupMethod::Offline => "consistent".into(),
        },
        created_at: ctx.store.now(),
        versions: versions(ctx).await,
        disks: manifest_disks,
        skipped,
        files: hashed,
    };
    let bytes = manifest.to_bytes();
    seal(layout, &bytes).map_err(|e| io_failure("writing the manifest", &e))?;
    Ok(Some((manifest, sha256_hex(&bytes))))
}

/// Manifest last, then the rename that makes the backup complete, each made durable.
fn seal(layout: &Layout, manifest: &[u8]) -> std::io::Result<()> {
    files::write_synced(&layout.partial.join(Manifest::FILE), manifest)?;
    files::sync_path(&layout.partial)?;
    std::fs::rename(&layout.partial, &layout.done)?;
    files::sync_path(&layout.vm_dir)
}

fn disk_path(dir: &Path, d: &Disk) -> PathBuf {
    dir.join("disks").join(format!("{}.qcow2", d.target))
}

async fn domain_xml(ctx: &JobContext, vm: &str, flags: u32) -> Result<String, JobFailure> {
    ctx.hypervisor.with_domain(vm, move |d| d.xml_desc(flags)).await
}

async fn versions(ctx: &JobContext) -> Versions {
    let (lib, hyp) = ctx.hypervisor.versions().await.unwrap_or((0, 0));
    Versions {
        hyperfleet: env!("CARGO_PKG_VERSION").into(),
        libvirt: crate::system::version_text(lib),
        qemu: crate::system::version_text(hyp),
    }
}

/// Verifies the new backup at `backups.verify_new` and records it (and its alert).
async fn verify_new(
    ctx: &JobContext,
    op: &Operation,
    tools: &Tools,
    id: BackupId,
    dir: &Path,
    sha256: &str,
) -> Result<serde_json::Value, JobFailure> {
    let started_at = ctx.store.now();
    let boot = BootOptions::new(&ctx.backups, None, None)?;
    let Some(report) = verify::verify(tools, dir, sha256, ctx.backups.verify_new, &boot, &ctx.cancel).await? else {
        // Cancelled while boot-testing the new backup: it stays, complete and unverified.
        return Ok(json!({ "level": ctx.backups.verify_new, "result": null, "cancelled": true }));
    };
    let record = ctx.store.backup(id).await.map_err(|e| transient(&e))?;
    let v = NewVerification { backup: id, operation: op.id, started_at, report: &report };
    ctx.app.record_verification(&record, v).await.map_err(|e| transient(&e))?;
    Ok(json!({ "level": report.level, "result": report.result, "code": report.code() }))
}

pub(super) fn transient(e: &hyperfleet_core::Error) -> JobFailure {
    JobFailure::new(ErrorClass::Transient, "backup_record_failed", e.to_string())
}
