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
        }
    }
}

impl BackupSettings {
    /// The effective backup directory for a `data_dir`.
    pub fn dir_in(&self, data_dir: &std::path::Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }
}
