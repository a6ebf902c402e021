//! libvirt's push backup of a running domain: `virsh backup-begin` with a
//! backup XML naming a new qcow2 target per disk, then followed with
//! `virsh domjobinfo` until the job ends (the runner renews the lease
//! meanwhile). A cancel aborts the job. Never snapshot + blockcommit.

use std::{path::Path, time::Duration};

use hyperfleet_core::operation::{ErrorClass, JobFailure};
use tokio_util::sync::CancellationToken;

use super::{disks::Disk, files, tools::Tools};

const POLL: Duration = Duration::from_millis(200);

/// How a live backup ended.
pub enum Ended {
    Completed,
    Cancelled,
}

/// The `<domainbackup>` document: each backed-up disk into `<disks_dir>/<target>.qcow2`, the others not.
pub fn backup_xml(disks: &[Disk], skipped: &[String], disks_dir: &Path) -> String {
    let mut xml = String::from("<domainbackup mode='push'>\n  <disks>\n");
    for d in disks {
        let target = disks_dir.join(format!("{}.qcow2", d.target));
        xml.push_str(&format!(
            "    <disk name='{}' backup='yes' type='file'>\n      <driver type='qcow2'/>\n      <target file='{}'/>\n    </disk>\n",
            d.target,
            escape(&target.to_string_lossy()),
        ));
    }
    for s in skipped {
        let name = s.split(' ').next().unwrap_or_default();
        xml.push_str(&format!("    <disk name='{name}' backup='no'/>\n"));
    }
    xml.push_str("  </disks>\n</domainbackup>\n");
    xml
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('\'', "&apos;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Aborts a backup job left running by an attempt whose worker died (nothing when there is none).
pub async fn abort_leftover(tools: &Tools, vm: &str) {
    if let Ok(info) = tools.virsh_ok(&["domjobinfo", vm]).await
        && job_type(&info) != Some("None")
    {
        tracing::warn!(vm, "aborting a libvirt job left by an earlier attempt");
        let _ = tools.virsh(&["domjobabort", vm]).await;
    }
}

/// Runs the push backup of `vm` into `partial/disks/` and waits for it.
pub async fn run(
    tools: &Tools,
    vm: &str,
    disks: &[Disk],
    skipped: &[String],
    partial: &Path,
    cancel: &CancellationToken,
) -> Result<Ended, JobFailure> {
    let xml = backup_xml(disks, skipped, &partial.join("disks"));
    // The document lives beside the backup, not in it, and only until libvirt has read it.
    let xml_file = partial.with_extension("backup.xml");
    files::write_synced(&xml_file, xml.as_bytes()).map_err(|e| files::io_failure("writing the backup XML", &e))?;
    let begun = tools.virsh_ok(&["backup-begin".as_ref(), vm.as_ref(), xml_file.as_os_str()]).await;
    let _ = std::fs::remove_file(&xml_file);
    begun?;
    let deadline = tokio::time::Instant::now() + tools.timeout;
    loop {
        let info = tools.virsh_ok(&["domjobinfo", vm]).await?;
        if job_type(&info) == Some("None") {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = tools.virsh(&["domjobabort", vm]).await;
            return Err(JobFailure::new(
                ErrorClass::Timeout,
                "backup_timeout",
                format!("the libvirt backup job did not end within {} s; aborted", tools.timeout.as_secs()),
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => {
                let _ = tools.virsh(&["domjobabort", vm]).await;
                return Ok(Ended::Cancelled);
            }
        }
    }
    let done = tools.virsh_ok(&["domjobinfo", "--completed", vm]).await?;
    match job_type(&done) {
        Some("Completed") => Ok(Ended::Completed),
        other => Err(JobFailure::new(
            ErrorClass::Transient,
            "backup_job_failed",
            format!("the libvirt backup job ended as {}: {}", other.unwrap_or("unknown"), done.trim()),
        )),
    }
}

/// The `Job type:` line of `virsh domjobinfo`.
fn job_type(info: &str) -> Option<&str> {
    info.lines().find_map(|l| l.strip_prefix("Job type:")).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backup_xml_names_each_disk_and_skips_the_rest() {
        let disks = [Disk { target: "vda".into(), source: "/i/a".into(), format: "raw".into() }];
        let xml = backup_xml(&disks, &["hdc (cdrom)".into()], Path::new("/b/web/x.partial/disks"));
        assert!(xml.contains("<disk name='vda' backup='yes' type='file'>"), "{xml}");
        assert!(xml.contains("<target file='/b/web/x.partial/disks/vda.qcow2'/>"), "{xml}");
        assert!(xml.contains("<disk name='hdc' backup='no'/>"), "{xml}");
        assert_eq!(job_type("Job type:         Unbounded\nOperation: Backup\n"), Some("Unbounded"));
        assert_eq!(job_type("Job type:         None\n"), Some("None"));
    }
}
