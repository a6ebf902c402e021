//! `[backups]`: where backups are written and how they are verified.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backup::VerifyLevel;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    /// Where backups are written on each host: `<dir>/<vm>/<backup-id>/`. Default `<data_dir>/backups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The level a new backup is verified at as soon as it is written.
    #[serde(default = "default_verify_new")]
    pub verify_new: VerifyLevel,
    /// A backup whose last ok verification is older than this shows as `outdated`.
    #[serde(default = "default_reverify_after_days")]
    pub reverify_after_days: u32,
    /// Each `qemu-img`/`virsh` call, and each libvirt backup job, is given up after this long.
    #[serde(default = "default_tool_timeout_s")]
    pub tool_timeout_s: u64,
    /// Health check `backup_freshness`: a VM's newest complete backup older than
    /// this warns, older than twice this is an error.
    #[serde(default = "default_max_age_h")]
    pub max_age_h: u32,
    /// Level `boot`: the regular expression the guest must print on its serial
    /// console (searched anywhere in it; at most 256 bytes). Requests may give their own.
    #[serde(default = "default_boot_marker")]
    pub boot_marker: String,
    /// Level `boot`: how long the guest has to print it (1-3600 s). Requests may give their own.
    #[serde(default = "default_boot_timeout_s")]
    pub boot_timeout_s: u32,
    /// Level `boot`: the test domain gets the backup's memory, at most this much.
    #[serde(default = "default_boot_max_memory_mib")]
    pub boot_max_memory_mib: u32,
    /// Level `boot`: the test domain gets the backup's vCPUs, at most this many.
    #[serde(default = "default_boot_max_vcpus")]
    pub boot_max_vcpus: u32,
}

fn default_max_age_h() -> u32 {
    // Daily backups, with a day's grace.
    48
}
fn default_boot_marker() -> String {
    // A Linux getty's prompt, or the test suite's boot-sector fixture.
    "login:|HYPERFLEET-BOOT-OK".into()
}
fn default_boot_timeout_s() -> u32 {
    300
}
fn default_boot_max_memory_mib() -> u32 {
    1024
}
fn default_boot_max_vcpus() -> u32 {
    2
}

fn default_verify_new() -> VerifyLevel {
    VerifyLevel::Checksum
}
fn default_reverify_after_days() -> u32 {
    7
}
fn default_tool_timeout_s() -> u64 {
    3600
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            dir: None,
            verify_new: default_verify_new(),
            reverify_after_days: default_reverify_after_days(),
            tool_timeout_s: default_tool_timeout_s(),
            max_age_h: default_max_age_h(),
            boot_marker: default_boot_marker(),
            boot_timeout_s: default_boot_timeout_s(),
            boot_max_memory_mib: default_boot_max_memory_mib(),
            boot_max_vcpus: default_boot_max_vcpus(),
        }
    }
}

impl BackupSettings {
    /// The effective backup directory for a `data_dir`.
    pub fn dir_in(&self, data_dir: &std::path::Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }
}
