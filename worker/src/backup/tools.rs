//! `qemu-img` and `virsh` as argument vectors (never a shell), each call
//! bounded by a timeout and killed when it is dropped (a cancelled attempt).

use std::{ffi::OsStr, path::Path, process::Output, time::Duration};

use hyperfleet_core::operation::{ErrorClass, JobFailure};

/// The tools of one host, with the libvirt URI and the per-call timeout.
#[derive(Debug, Clone)]
pub struct Tools {
    pub uri: String,
    pub timeout: Duration,
}

/// Runs `program args…` and returns its output, whatever its exit status.
pub async fn run<S: AsRef<OsStr>>(program: &str, args: &[S], timeout: Duration) -> Result<Output, JobFailure> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => Err(JobFailure::new(
            ErrorClass::Timeout,
            "tool_timeout",
            format!("{program} did not finish within {} s", timeout.as_secs()),
        )),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(JobFailure::new(ErrorClass::Permanent, "tool_missing", format!("{program} is not installed: {e}")))
        }
        Ok(Err(e)) => Err(JobFailure::new(ErrorClass::Transient, "tool_failed", format!("running {program}: {e}"))),
        Ok(Ok(out)) => Ok(out),
    }
}

/// The output of a call that must succeed; a failure names the tool and its stderr.
fn ok(program: &str, code: &str, out: Output) -> Result<Output, JobFailure> {
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let (class, code) = classify(&stderr).unwrap_or((ErrorClass::Transient, code));
    Err(JobFailure::new(class, code, format!("{program} failed ({}): {stderr}", out.status)))
}

/// Failures that retrying cannot fix, told apart by what the tool printed:
/// they fail the operation at once instead of blocking the VM's queue through
/// every retry.
fn classify(stderr: &str) -> Option<(ErrorClass, &'static str)> {
    let permanent = [
        ("No space left", "no_space"),
        // libvirt's VIR_ERR_NO_SUPPORT / VIR_ERR_OPERATION_UNSUPPORTED: this driver cannot back up.
        ("not supported by the connection driver", "unsupported"),
        ("Operation not supported", "unsupported"),
        ("Domain not found", "vm_not_found"),
        // The VM's disk is not where its XML says: nothing to copy until someone fixes that.
        ("No such file or directory", "disk_missing"),
        ("Requested operation is not valid", "invalid_vm_state"),
        ("Permission denied", "permission_denied"),
    ];
    permanent.iter().find(|(text, _)| stderr.contains(text)).map(|(_, code)| (ErrorClass::Permanent, *code))
}

impl Tools {
    pub async fn virsh<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Output, JobFailure> {
        let mut all: Vec<&OsStr> = vec![OsStr::new("-c"), OsStr::new(&self.uri)];
        all.extend(args.iter().map(AsRef::as_ref));
        run("virsh", &all, self.timeout).await
    }

    pub async fn virsh_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, JobFailure> {
        let out = ok("virsh", "virsh_failed", self.virsh(args).await?)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Copies `src` (of `format`) into a new qcow2 image `dst`.
    pub async fn convert(&self, src: &Path, format: &str, dst: &Path) -> Result<(), JobFailure> {
        let args: [&OsStr; 7] = [
            "convert".as_ref(),
            "-f".as_ref(),
            format.as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            src.as_os_str(),
            dst.as_os_str(),
        ];
        ok("qemu-img", "qemu_img_failed", run("qemu-img", &args, self.timeout).await?).map(drop)
    }

    /// A new qcow2 `overlay` whose backing file is the qcow2 image `backing` (opened read-only through it).
    pub async fn overlay(&self, backing: &Path, overlay: &Path) -> Result<(), JobFailure> {
        let args: [&OsStr; 8] = [
            "create".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-F".as_ref(),
            "qcow2".as_ref(),
            "-b".as_ref(),
            backing.as_os_str(),
            overlay.as_os_str(),
        ];
        ok("qemu-img", "qemu_img_failed", run("qemu-img", &args, self.timeout).await?).map(drop)
    }

    /// The virtual size of a qcow2 image, or why it cannot be read.
    pub async fn virtual_size(&self, image: &Path) -> Result<Result<u64, String>, JobFailure> {
        let args: [&OsStr; 6] = [
            "info".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "--output=json".as_ref(),
            "-U".as_ref(),
            image.as_os_str(),
        ];
        let out = run("qemu-img", &args, self.timeout).await?;
        if !out.status.success() {
            return Ok(Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        Ok(info["virtual-size"].as_u64().ok_or_else(|| "qemu-img info gave no virtual size".to_owned()))
    }

    /// `qemu-img check`: `Ok(leaks)` when sound, `Err(why)` when corrupt or unreadable.
    pub async fn check(&self, image: &Path) -> Result<Result<u64, String>, JobFailure> {
        let args: [&OsStr; 5] =
            ["check".as_ref(), "-f".as_ref(), "qcow2".as_ref(), "--output=json".as_ref(), image.as_os_str()];
        let out = run("qemu-img", &args, self.timeout).await?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let leaks = report["leaks"].as_u64().unwrap_or(0);
        // Exit 0: sound; 3: leaked clusters only (harmless); 2: corruptions; 1: cannot be checked.
        match out.status.code() {
            Some(0 | 3) => Ok(Ok(leaks)),
            _ => {
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                let corruptions = report["corruptions"].as_u64().unwrap_or(0);
                Ok(Err(if corruptions > 0 { format!("{corruptions} corruptions") } else { stderr }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_retrying_cannot_fix_fails_at_once() {
        let unsupported = "error: this function is not supported by the connection driver: virDomainBackupBegin";
        assert_eq!(classify(unsupported), Some((ErrorClass::Permanent, "unsupported")));
        assert_eq!(classify("qemu-img: error: No space left on device").map(|c| c.1), Some("no_space"));
        let missing = "qemu-img: Could not open '/guest/diskimage1': No such file or directory";
        assert_eq!(classify(missing).map(|c| c.1), Some("disk_missing"));
        assert_eq!(classify("error: Failed to connect socket: Connection refused"), None, "a daemon restart: retry");
    }
}
