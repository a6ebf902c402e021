//! The sections of [`super::Settings`], each with its defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::slots::SlotSettings;
use crate::backoff::Backoff;

/// How long finished work is kept; pruned by the `ledger.prune` operation
/// (fired hourly by a default schedule) in bounded batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    #[serde(default = "default_keep_days")]
    pub operations_days: u32,
    #[serde(default = "default_keep_failed_days")]
    pub failed_operations_days: u32,
    #[serde(default = "default_keep_days")]
    pub health_runs_days: u32,
    /// Resolved alerts, with their events and notifications (firing ones are always kept).
    #[serde(default = "default_keep_alerts_days")]
    pub alerts_days: u32,
    /// Rows deleted per statement, so pruning never holds the database for long.
    #[serde(default = "default_prune_batch")]
    pub batch: u32,
}

pub(super) fn default_keep_days() -> u32 {
    30
}
pub(super) fn default_keep_alerts_days() -> u32 {
    365
}
pub(super) fn default_keep_failed_days() -> u32 {
    90
}
pub(super) fn default_prune_batch() -> u32 {
    500
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            operations_days: default_keep_days(),
            failed_operations_days: default_keep_failed_days(),
            health_runs_days: default_keep_days(),
            alerts_days: default_keep_alerts_days(),
            batch: default_prune_batch(),
        }
    }
}

/// `[audit]`: the key the audit chain is sealed with. It lives outside the
/// database; every API and scheduler process of a fleet needs the same one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Default: `<data_dir>/audit.key`, created on first start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<super::Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// On first start (no schedules yet) create the default schedules: health
    /// checks every 15 minutes on every host, hourly ledger pruning, and weekly
    /// verification of every backup never verified or outdated.
    #[serde(default = "default_true")]
    pub default_schedules: bool,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self { default_schedules: true }
    }
}

pub(super) fn default_true() -> bool {
    true
}

/// Thresholds of the health checks. `for_s`: how long a threshold must hold
/// before the status changes; `clear`: where a warning or error ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Hosts that run guests under emulation only: a missing `/dev/kvm` is a warning there.
    #[serde(default)]
    pub emulation_only: bool,
    /// The KVM device checked for presence and access.
    #[serde(default = "default_kvm_device")]
    pub kvm_device: PathBuf,
    /// Directories holding backups, checked for free space with the data and image dirs.
    #[serde(default)]
    pub backup_dirs: Vec<PathBuf>,
    /// Free space in percent (lower is worse).
    #[serde(default = "default_disk")]
    pub disk_free_pct: crate::health::Threshold,
    /// Memory used in percent.
    #[serde(default = "default_memory")]
    pub memory_used_pct: crate::health::Threshold,
    /// One-minute load average per CPU, in percent.
    #[serde(default = "default_cpu")]
    pub load_per_cpu_pct: crate::health::Threshold,
    /// libvirt's answer time in milliseconds.
    #[serde(default = "default_libvirt_ms")]
    pub libvirt_response_ms: crate::health::Threshold,
}

pub(super) fn default_kvm_device() -> PathBuf {
    PathBuf::from("/dev/kvm")
}
pub(super) fn default_disk() -> crate::health::Threshold {
    crate::health::Threshold::new(20.0, 10.0, 25.0, 600)
}
pub(super) fn default_memory() -> crate::health::Threshold {
    crate::health::Threshold::new(85.0, 95.0, 70.0, 300)
}
pub(super) fn default_cpu() -> crate::health::Threshold {
    crate::health::Threshold::new(90.0, 150.0, 75.0, 300)
}
pub(super) fn default_libvirt_ms() -> crate::health::Threshold {
    crate::health::Threshold::new(1000.0, 5000.0, 500.0, 0)
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            emulation_only: false,
            kvm_device: default_kvm_device(),
            backup_dirs: Vec::new(),
            disk_free_pct: default_disk(),
            memory_used_pct: default_memory(),
            load_per_cpu_pct: default_cpu(),
            libvirt_response_ms: default_libvirt_ms(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://<data_dir>/hyperfleet.db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a request waits for a database connection before it answers
    /// 503 `database_unavailable` (during an outage, clients learn it this fast).
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn pool(&self) -> crate::store::PoolConfig {
        crate::store::PoolConfig {
            max_connections: self.max_connections,
            acquire_timeout: std::time::Duration::from_millis(self.acquire_timeout_ms.max(1)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// This worker's host name in the fleet; default: the machine's hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default = "default_libvirt_uri")]
    pub libvirt_uri: String,
    /// Operations one worker runs at once, per class of work: a class never
    /// waits for another's slots (different VMs; one VM runs one at a time).
    #[serde(default)]
    pub slots: SlotSettings,
    /// A running operation whose lease is not renewed for this long is abandoned.
    #[serde(default = "default_lease_s")]
    pub lease_s: u64,
    /// How often the inventory is refreshed from libvirt besides after each operation.
    #[serde(default = "default_inventory_interval_s")]
    pub inventory_interval_s: u64,
    /// On SIGTERM, how long running operations may take to finish before they are handed back.
    #[serde(default = "default_shutdown_grace_s")]
    pub shutdown_grace_s: u64,
    /// How often idle workers look for work that no notification announced
    /// (SQLite written by another process; delayed retries).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Heartbeat period; a host counts as offline after three missed beats.
    #[serde(default = "default_heartbeat_s")]
    pub heartbeat_s: u64,
    /// Directories holding VM images, reported with their disk usage.
    #[serde(default)]
    pub image_dirs: Vec<PathBuf>,
    /// Directory of installation ISOs, catalogued with their `.sha256` sidecars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default, flatten)]
    pub backoff: Backoff,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A `tracing` filter, e.g. `info,hyperfleet_worker=debug`.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

pub(super) fn default_data_dir() -> PathBuf {
    PathBuf::from("./hyperfleet-data")
}
pub(super) fn default_max_connections() -> u32 {
    16
}
pub(super) fn default_acquire_timeout_ms() -> u64 {
    crate::store::DEFAULT_ACQUIRE_TIMEOUT.as_millis() as u64
}
pub(super) fn default_libvirt_uri() -> String {
    "qemu:///system".into()
}
pub(super) fn default_lease_s() -> u64 {
    30
}
pub(super) fn default_inventory_interval_s() -> u64 {
    30
}
pub(super) fn default_shutdown_grace_s() -> u64 {
    30
}
pub(super) fn default_poll_interval_ms() -> u64 {
    1_000
}
pub(super) fn default_heartbeat_s() -> u64 {
    5
}
pub(super) fn default_max_attempts() -> u32 {
    5
}
pub(super) fn default_log_format() -> String {
    "text".into()
}
pub(super) fn default_log_filter() -> String {
    "info".into()
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: None, max_connections: default_max_connections(), acquire_timeout_ms: default_acquire_timeout_ms() }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            host: None,
            libvirt_uri: default_libvirt_uri(),
            slots: SlotSettings::default(),
            lease_s: default_lease_s(),
            inventory_interval_s: default_inventory_interval_s(),
            shutdown_grace_s: default_shutdown_grace_s(),
            poll_interval_ms: default_poll_interval_ms(),
            heartbeat_s: default_heartbeat_s(),
            image_dirs: Vec::new(),
            iso_dir: None,
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self { max_attempts: default_max_attempts(), backoff: Backoff::default() }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: default_log_format(), filter: default_log_filter() }
    }
}
