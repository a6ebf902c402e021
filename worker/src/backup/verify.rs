//! Verifying a written backup. `checksum`: the manifest file's sha256 matches
//! the ledger's, every listed file has its size and sha256, files it does
//! not list are reported. `image`: and `qemu-img check` finds every disk
//! sound, of the virtual size the manifest recorded. (`qemu-img check` does
//! not notice a flipped data byte: that is what the checksum level is for.)
//! `boot`: and a fresh domain booted from overlays of the disks prints the
//! boot marker in time (`boot`).

use std::path::Path;

use hyperfleet_core::{
    backup::{Finding, Manifest, VerifyLevel, VerifyReport, VerifyResult, sha256_hex},
    operation::{ErrorClass, JobFailure},
};

use tokio_util::sync::CancellationToken;

use super::{
    boot::{self, BootOptions},
    files,
    tools::Tools,
};

/// Verifies the backup in `dir` whose manifest's sha256 the ledger holds as `ledger_sha256`.
/// A bad backup is an `Ok` report with a failed result; `Err` means it could not be verified;
/// `Ok(None)`: cancelled during the boot test.
pub async fn verify(
    tools: &Tools,
    dir: &Path,
    ledger_sha256: &str,
    level: VerifyLevel,
    boot_options: &BootOptions,
    cancel: &CancellationToken,
) -> Result<Option<VerifyReport>, JobFailure> {
    let mut report = VerifyReport {
        level,
        result: VerifyResult::Ok,
        findings: vec![],
        warnings: vec![],
        files_checked: 0,
        bytes_checked: 0,
        boot: None,
    };
    let manifest = match checksum(dir, ledger_sha256, &mut report).await? {
        Some(m) if report.findings.is_empty() => m,
        _ => return Ok(Some(failed(report))),
    };
    if level >= VerifyLevel::Image {
        for disk in &manifest.disks {
            let path = dir.join(&disk.path);
            let problem = match tools.check(&path).await? {
                Err(why) => Some(format!("qemu-img check: {why}")),
                Ok(leaks) => {
                    if leaks > 0 {
                        report.warnings.push(format!("{}: {leaks} leaked clusters", disk.path));
                    }
                    match tools.virtual_size(&path).await? {
                        Ok(size) if size == disk.virtual_size => None,
                        Ok(size) => Some(format!("virtual size {size}, the manifest says {}", disk.virtual_size)),
                        Err(why) => Some(format!("qemu-img info: {why}")),
                    }
                }
            };
            if let Some(why) = problem {
                report.findings.push(Finding::new("image_corrupt", Some(&disk.path), format!("{}: {why}", disk.path)));
            }
        }
    }
    if level >= VerifyLevel::Boot && report.findings.is_empty() {
        let Some(seen) = boot::boot_test(tools, dir, &manifest, boot_options, cancel).await? else {
            return Ok(None);
        };
        if seen.marker_after_ms.is_none() {
            let why = match seen.stopped_after_ms {
                Some(ms) => format!("the guest stopped after {ms} ms without printing `{}`", seen.marker),
                None => format!("no `{}` on the serial console within {} s", seen.marker, seen.timeout_s),
            };
            report.findings.push(Finding::new("boot_timeout", None, why));
        }
        report.boot = Some(seen);
    }
    Ok(Some(if report.findings.is_empty() { report } else { failed(report) }))
}

fn failed(mut report: VerifyReport) -> VerifyReport {
    report.result = VerifyResult::Failed;
    report
}

/// The checksum level; returns the manifest when it could be trusted and read.
async fn checksum(dir: &Path, ledger_sha256: &str, report: &mut VerifyReport) -> Result<Option<Manifest>, JobFailure> {
    let bytes = match std::fs::read(dir.join(Manifest::FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let f =
                Finding::new("manifest_missing", Some(Manifest::FILE), format!("{} has no manifest", dir.display()));
            report.findings.push(f);
            return Ok(None);
        }
        Err(e) => return Err(files::io_failure("reading the manifest", &e)),
    };
    let actual = sha256_hex(&bytes);
    if actual != ledger_sha256 {
        let message = format!("the manifest's sha256 is {actual}, the ledger recorded {ledger_sha256}");
        report.findings.push(Finding::new("manifest_tampered", Some(Manifest::FILE), message));
        return Ok(None);
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        JobFailure::new(
            ErrorClass::Permanent,
            "manifest_unreadable",
            format!("the recorded manifest does not parse: {e}"),
        )
    })?;
    let (dir_owned, listed) = (dir.to_path_buf(), manifest.files.clone());
    let hashed = tokio::task::spawn_blocking(move || {
        let on_disk = files::list_files(&dir_owned)?;
        let mut seen = Vec::new();
        for f in &listed {
            let path = dir_owned.join(&f.path);
            seen.push(match std::fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
                Ok(_) => Some(files::hash_file(&path)?),
            });
        }
        Ok((on_disk, seen))
    })
    .await
    .map_err(|e| JobFailure::new(ErrorClass::Transient, "backup_io", format!("hashing panicked: {e}")))?
    .map_err(|e| files::io_failure("hashing the backup", &e))?;
    let (on_disk, seen) = hashed;
    for (f, got) in manifest.files.iter().zip(seen) {
        let finding = match got {
            None => Some(Finding::new("file_missing", Some(&f.path), format!("{} is missing", f.path))),
            Some((size, _)) if size != f.size => Some(Finding::new(
                "size_mismatch",
                Some(&f.path),
                format!("{} has {size} bytes, the manifest says {}", f.path, f.size),
            )),
            Some((size, sha)) if sha != f.sha256 => {
                report.bytes_checked += size;
                Some(Finding::new(
                    "checksum_mismatch",
                    Some(&f.path),
                    format!("{} has sha256 {sha}, the manifest says {}", f.path, f.sha256),
                ))
            }
            Some((size, _)) => {
                report.bytes_checked += size;
                None
            }
        };
        report.files_checked += 1;
        report.findings.extend(finding);
    }
    for extra in on_disk.iter().filter(|p| *p != Manifest::FILE && !manifest.files.iter().any(|f| &f.path == *p)) {
        report.warnings.push(format!("{extra} is not in the manifest"));
    }
    Ok(Some(manifest))
}
