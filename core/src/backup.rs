//! Backups as the domain sees them: a full copy of one VM at one point in
//! time, described by a [`Manifest`] (every file with its size and sha256).
//! The manifest's own sha256 is kept in the ledger, so a backup is checked
//! against the record of what was written, not against itself.
//!
//! A verification that ran and found the backup bad is a *result*
//! ([`VerifyResult::Failed`] with a [`Finding`]), not a failed operation: the
//! operation fails only when it could not verify at all.

use serde::{Deserialize, Serialize};

use crate::{BackupId, Error, Timestamp, closed_set::closed_set};

closed_set!(
    /// Where a backup is in its life.
    BackupState, "invalid_backup_state", "a backup state" {
        /// Being written (its files are in `<id>.partial/`).
        Creating = "creating",
        /// Written, fsynced and renamed; its manifest hash is in the ledger.
        Complete = "complete",
        /// Could not be written; nothing of it remains on disk.
        Failed = "failed",
        /// Removed from disk; the row keeps its history.
        Deleted = "deleted",
    }
);

closed_set!(
    /// How a backup's disks were copied.
    BackupMethod, "invalid_backup_method", "a backup method" {
        /// A running VM through libvirt's push backup (crash-consistent, no snapshot overlays).
        Live = "live",
        /// A shut-off VM through `qemu-img convert`.
        Offline = "offline",
    }
);

closed_set!(
    /// How deeply a verification checks; each level includes the ones before.
    VerifyLevel, "invalid_verify_level", "a verification level" {
        /// The manifest matches the ledger's hash; every file's size and sha256 match.
        Checksum = "checksum",
        /// And `qemu-img check` finds every disk image sound, of the recorded virtual size.
        Image = "image",
        /// And a fresh, network-less domain booted from throw-away overlays of the
        /// disks prints the boot marker on its serial console in time.
        Boot = "boot",
    }
);

closed_set!(
    /// What a verification found.
    VerifyResult, "invalid_verify_result", "a verification result" {
        Ok = "ok",
        Failed = "failed",
    }
);

closed_set!(
    /// A backup's verification as shown everywhere, derived from its last
    /// verification and `backups.reverify_after_days`.
    VerificationState, "invalid_verification_state", "a verification state" {
        /// Never verified.
        None = "none",
        Ok = "ok",
        Failed = "failed",
        /// The last verification was ok but is older than `backups.reverify_after_days`.
        Outdated = "outdated",
    }
);

/// The verification state of a backup whose last verification ended `last`.
pub fn verification_state(
    last: Option<(VerifyResult, Timestamp)>,
    now: Timestamp,
    reverify_after_days: u32,
) -> VerificationState {
    match last {
        None => VerificationState::None,
        Some((VerifyResult::Failed, _)) => VerificationState::Failed,
        Some((VerifyResult::Ok, at)) => {
            let limit = std::time::Duration::from_secs(86_400 * u64::from(reverify_after_days));
            if at.plus(limit) <= now { VerificationState::Outdated } else { VerificationState::Ok }
        }
    }
}

/// Versions of the software that wrote a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    pub hyperfleet: String,
    pub libvirt: String,
    pub qemu: String,
}

/// One file of a backup, relative to its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// One backed-up disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDisk {
    /// The guest's device name (`vda`).
    pub target: String,
    /// Its file in the backup (`disks/vda.qcow2`).
    pub path: String,
    /// The format of the source (`raw`, `qcow2`).
    pub source_format: String,
    pub virtual_size: u64,
}

/// What a backup holds, written last into its directory as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub backup_id: BackupId,
    pub host: String,
    pub vm: String,
    pub method: BackupMethod,
    /// `crash-consistent` for a running VM, `consistent` for a shut-off one.
    pub consistency: String,
    pub created_at: Timestamp,
    pub versions: Versions,
    pub disks: Vec<ManifestDisk>,
    /// Disks not backed up, with why (`hdc (cdrom)`, `vdb (read-only)`).
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Every file of the backup but the manifest itself.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    pub const FORMAT: u32 = 1;
    pub const FILE: &'static str = "manifest.json";

    /// The manifest's bytes as written to disk: its sha256 is what the ledger keeps.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The sha256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Why a verification failed (a stable `code`, the file it concerns if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `manifest_tampered`, `manifest_missing`, `file_missing`, `size_mismatch`, `checksum_mismatch`, `image_corrupt`, `boot_timeout`.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn new(code: &str, file: Option<&str>, message: impl Into<String>) -> Self {
        Self { code: code.into(), file: file.map(str::to_owned), message: message.into() }
    }
}

/// What one verification found, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub level: VerifyLevel,
    pub result: VerifyResult,
    /// The first failure (its code is the verification's code).
    pub findings: Vec<Finding>,
    /// Not failures: files found in the directory that the manifest does not list, image leaks.
    pub warnings: Vec<String>,
    pub files_checked: usize,
    pub bytes_checked: u64,
    /// What the boot test saw (level `boot`, when it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootReport>,
}

/// What a boot test saw: the marker it looked for, how long the guest took to
/// print it (absent when it never did), and the console's last 4 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootReport {
    /// The test domain's name (`hf-verify-…`), gone once the test ended.
    pub domain: String,
    pub marker: String,
    pub timeout_s: u32,
    /// Milliseconds from the domain's start to the marker on its console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_after_ms: Option<u64>,
    /// Milliseconds from the start to the guest stopping on its own, without the marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_after_ms: Option<u64>,
    /// The serial console's last [`CONSOLE_TAIL_BYTES`] bytes (lossy UTF-8).
    pub console_tail: String,
}

/// How much of a boot test's console the verification record keeps.
pub const CONSOLE_TAIL_BYTES: usize = 4096;
/// The longest boot marker accepted, in bytes (like silence regexes).
pub const MAX_BOOT_MARKER_BYTES: usize = 256;
/// The longest boot test accepted, in seconds.
pub const MAX_BOOT_TIMEOUT_S: u32 = 3600;
const MAX_MARKER_COMPILED_BYTES: usize = 1 << 20;

/// A compiled boot marker.
pub type BootMarker = regex::Regex;

/// Compiles a boot marker (searched anywhere in the console's text), within the size limits.
pub fn boot_marker(pattern: &str) -> Result<BootMarker, Error> {
    if pattern.is_empty() || pattern.len() > MAX_BOOT_MARKER_BYTES {
        return Err(Error::invalid(
            "invalid_boot_marker",
            format!("a boot marker is a regular expression of 1-{MAX_BOOT_MARKER_BYTES} bytes"),
        ));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(MAX_MARKER_COMPILED_BYTES)
        .dfa_size_limit(MAX_MARKER_COMPILED_BYTES)
        .build()
        .map_err(|e| Error::invalid("invalid_boot_marker", format!("the boot marker does not compile: {e}")))
}

/// Checks a boot test's timeout against its limits.
pub fn boot_timeout(seconds: u32) -> Result<u32, Error> {
    if (1..=MAX_BOOT_TIMEOUT_S).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(Error::invalid("invalid_boot_timeout", format!("boot_timeout_s must be 1-{MAX_BOOT_TIMEOUT_S}")))
    }
}

impl VerifyReport {
    pub fn code(&self) -> Option<&str> {
        self.findings.first().map(|f| f.code.as_str())
    }
}

/// Parameters of `backup.create`: the VM (also the operation's VM, so that
/// the backup waits its turn behind the VM's other operations).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    pub vm: String,
}

impl CreateParams {
    pub fn validate(&self) -> Result<(), Error> {
        crate::vm::VmName::parse(&self.vm).map(drop)
    }
}

/// Parameters of `backup.verify`: one backup, or (without `backup_id`) every
/// complete backup of the host that was never verified or is `outdated`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<BackupId>,
    #[serde(default = "default_level")]
    pub level: VerifyLevel,
    /// Level `boot`: the marker to wait for, instead of `backups.boot_marker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_marker: Option<String>,
    /// Level `boot`: how long to wait for it, instead of `backups.boot_timeout_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_timeout_s: Option<u32>,
}

/// Parameters of `backup.delete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    pub backup_id: BackupId,
}

fn default_level() -> VerifyLevel {
    VerifyLevel::Checksum
}

impl VerifyParams {
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(m) = &self.boot_marker {
            boot_marker(m)?;
        }
        if let Some(t) = self.boot_timeout_s {
            boot_timeout(t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_state_is_derived_from_the_last_result_and_its_age() {
        let now = Timestamp::now();
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(verification_state(None, now, 7), VerificationState::None);
        assert_eq!(verification_state(Some((VerifyResult::Ok, now.minus(day))), now, 7), VerificationState::Ok);
        assert_eq!(
            verification_state(Some((VerifyResult::Ok, now.minus(day * 8))), now, 7),
            VerificationState::Outdated
        );
        assert_eq!(
            verification_state(Some((VerifyResult::Failed, now.minus(day * 8))), now, 7),
            VerificationState::Failed
        );
    }

    #[test]
    fn boot_markers_and_timeouts_are_bounded() {
        assert!(boot_marker("HYPERFLEET-BOOT-OK [a-z0-9-]+").unwrap().is_match("x\nHYPERFLEET-BOOT-OK nonce-1\n"));
        assert_eq!(boot_marker("").unwrap_err().code(), "invalid_boot_marker");
        assert_eq!(boot_marker(&"a".repeat(MAX_BOOT_MARKER_BYTES + 1)).unwrap_err().code(), "invalid_boot_marker");
        assert_eq!(boot_marker("(").unwrap_err().code(), "invalid_boot_marker");
        assert_eq!(
            boot_marker("\\w{100}\\w{100}\\w{100}").unwrap_err().code(),
            "invalid_boot_marker",
            "too big compiled"
        );
        assert_eq!(boot_timeout(5).unwrap(), 5);
        assert!(boot_timeout(0).is_err() && boot_timeout(MAX_BOOT_TIMEOUT_S + 1).is_err());
        let p: VerifyParams =
            serde_json::from_value(serde_json::json!({"level": "boot", "boot_timeout_s": 0})).unwrap();
        assert_eq!(p.validate().unwrap_err().code(), "invalid_boot_timeout");
    }

    #[test]
    fn the_manifest_hash_covers_its_exact_bytes() {
        let m = Manifest {
            format: Manifest::FORMAT,
            backup_id: BackupId::new(),
            host: "hv1".into(),
            vm: "web".into(),
            method: BackupMethod::Offline,
            consistency: "consistent".into(),
            created_at: Timestamp::now(),
            versions: Versions { hyperfleet: "0".into(), libvirt: "9".into(), qemu: "7".into() },
            disks: vec![],
            skipped: vec!["hdc (cdrom)".into()],
            files: vec![ManifestFile { path: "domain.xml".into(), size: 3, sha256: sha256_hex(b"abc") }],
        };
        let bytes = m.to_bytes();
        let back: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(sha256_hex(&back.to_bytes()), sha256_hex(&bytes));
        assert_eq!(m.total_size(), 3);
    }
}
