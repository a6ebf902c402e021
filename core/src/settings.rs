//! One typed [`Settings`]: a TOML file plus `HYPERFLEET__<SECTION>__<KEY>`
//! environment overrides. Unknown keys are rejected with their full path, and
//! secrets (passwords in the database URL) never reach `Debug` or the log.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;

const ENV_PREFIX: &str = "HYPERFLEET__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where Hyperfleet keeps its files (the SQLite database by default).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub api: ApiSettings,
    #[serde(default)]
    pub worker: WorkerSettings,
    #[serde(default)]
    pub retry: RetrySettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub scheduler: SchedulerSettings,
    #[serde(default)]
    pub health: HealthSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
}

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
    /// Rows deleted per statement, so pruning never holds the database for long.
    #[serde(default = "default_prune_batch")]
    pub batch: u32,
}

fn default_keep_days() -> u32 {
    30
}
fn default_keep_failed_days() -> u32 {
    90
}
fn default_prune_batch() -> u32 {
    500
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            operations_days: default_keep_days(),
            failed_operations_days: default_keep_failed_days(),
            health_runs_days: default_keep_days(),
            batch: default_prune_batch(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// On first start (no schedules yet) create the default schedules: health
    /// checks every 15 minutes on every host, backup verification weekly.
    #[serde(default = "default_true")]
    pub default_schedules: bool,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self { default_schedules: true }
    }
}

fn default_true() -> bool {
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
    /// Operations failed for good in the last hour.
    #[serde(default = "default_failed")]
    pub failed_operations_1h: crate::health::Threshold,
    /// Age of the oldest queued operation, in seconds.
    #[serde(default = "default_queue_age")]
    pub oldest_queued_s: crate::health::Threshold,
}

fn default_kvm_device() -> PathBuf {
    PathBuf::from("/dev/kvm")
}
fn default_disk() -> crate::health::Threshold {
    crate::health::Threshold::new(20.0, 10.0, 25.0, 600)
}
fn default_memory() -> crate::health::Threshold {
    crate::health::Threshold::new(85.0, 95.0, 70.0, 300)
}
fn default_cpu() -> crate::health::Threshold {
    crate::health::Threshold::new(90.0, 150.0, 75.0, 300)
}
fn default_libvirt_ms() -> crate::health::Threshold {
    crate::health::Threshold::new(1000.0, 5000.0, 500.0, 0)
}
fn default_failed() -> crate::health::Threshold {
    crate::health::Threshold::new(1.0, 10.0, 1.0, 0)
}
fn default_queue_age() -> crate::health::Threshold {
    crate::health::Threshold::new(300.0, 1800.0, 300.0, 0)
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
            failed_operations_1h: default_failed(),
            oldest_queued_s: default_queue_age(),
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Requests taking longer are answered 503 `timeout`.
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: u64,
    /// Sustained requests per second allowed per token (429 beyond, with `Retry-After`).
    #[serde(default = "default_rate_limit_per_s")]
    pub rate_limit_per_s: u32,
    /// Requests a token may send in a burst above the sustained rate.
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Serve HTTPS (rustls) when both are set; otherwise plain HTTP behind a proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// This worker's host name in the fleet; default: the machine's hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default = "default_libvirt_uri")]
    pub libvirt_uri: String,
    /// Operations one worker runs at once (different VMs; one VM runs one at a time).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
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

fn default_data_dir() -> PathBuf {
    PathBuf::from("./hyperfleet-data")
}
fn default_max_connections() -> u32 {
    16
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_body_limit() -> usize {
    64 * 1024
}
fn default_request_timeout_s() -> u64 {
    180
}
fn default_rate_limit_per_s() -> u32 {
    50
}
fn default_rate_limit_burst() -> u32 {
    200
}
fn default_libvirt_uri() -> String {
    "qemu:///system".into()
}
fn default_concurrency() -> usize {
    16
}
fn default_lease_s() -> u64 {
    30
}
fn default_inventory_interval_s() -> u64 {
    30
}
fn default_shutdown_grace_s() -> u64 {
    30
}
fn default_poll_interval_ms() -> u64 {
    1_000
}
fn default_heartbeat_s() -> u64 {
    5
}
fn default_max_attempts() -> u32 {
    5
}
fn default_log_format() -> String {
    "text".into()
}
fn default_log_filter() -> String {
    "info".into()
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: None, max_connections: default_max_connections() }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            body_limit_bytes: default_body_limit(),
            request_timeout_s: default_request_timeout_s(),
            rate_limit_per_s: default_rate_limit_per_s(),
            rate_limit_burst: default_rate_limit_burst(),
            tls: None,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            host: None,
            libvirt_uri: default_libvirt_uri(),
            concurrency: default_concurrency(),
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

impl Settings {
    /// Reads `path` (if any), applies `HYPERFLEET__…` overrides from `env`,
    /// rejects unknown keys and checks values.
    pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        // Start from the defaults so that a file or variable may set one field
        // of a table (`HYPERFLEET__HEALTH__DISK_FREE_PCT__WARN`) and keep the rest.
        let defaults: Settings = toml::Value::Table(toml::Table::new())
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        let mut root = toml::Table::try_from(&defaults).map_err(|e| ConfigError::Parse(e.to_string()))?;
        if let Some(path) = path {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            let file =
                text.parse::<toml::Table>().map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?;
            merge(&mut root, file);
        }
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let keys: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if keys.iter().any(String::is_empty) {
                return Err(ConfigError::Parse(format!("environment variable {name}: empty key segment")));
            }
            insert_path(&mut root, &keys, env_value(&raw)).map_err(|m| ConfigError::Parse(format!("{name}: {m}")))?;
        }
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(root))
            .map_err(|e| ConfigError::Parse(format!("{}: {}", e.path(), e.inner())))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let url = self.database_url();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid {
                key: "database.url",
                message: "must start with sqlite:, postgres:// or postgresql://".into(),
            });
        }
        if let Some(host) = &self.worker.host {
            crate::vm::VmName::parse(host).map_err(|_| ConfigError::Invalid {
                key: "worker.host",
                message: "host names are 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'".into(),
            })?;
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid { key: "database.max_connections", message: "must be at least 1".into() });
        }
        if self.worker.concurrency == 0 {
            return Err(ConfigError::Invalid { key: "worker.concurrency", message: "must be at least 1".into() });
        }
        if !(1..=3600).contains(&self.worker.heartbeat_s) {
            return Err(ConfigError::Invalid { key: "worker.heartbeat_s", message: "must be 1-3600".into() });
        }
        if self.worker.lease_s < 2 {
            return Err(ConfigError::Invalid { key: "worker.lease_s", message: "must be at least 2".into() });
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Invalid { key: "retry.max_attempts", message: "must be at least 1".into() });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid { key: "log.format", message: "must be `text` or `json`".into() });
        }
        Ok(())
    }

    /// The effective database URL (with the secret in it; never log this).
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("hyperfleet.db").display()))
    }

    /// This worker's host name: configured, else the machine's hostname.
    pub fn worker_host(&self) -> String {
        self.worker.host.clone().unwrap_or_else(machine_hostname)
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = Some(redact_url(&self.database_url()));
        shown.worker.host = Some(self.worker_host());
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render settings: {e}"))
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field("api", &self.api)
            .field("worker", &self.worker)
            .field("retry", &self.retry)
            .field("log", &self.log)
            .field("scheduler", &self.scheduler)
            .field("health", &self.health)
            .field("retention", &self.retention)
            .finish()
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also hides `password=` query values.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let authority_end = out[auth_start..].find('/').map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..authority_end].rfind('@')
            && let Some(colon) = out[auth_start..auth_start + at].find(':')
        {
            out.replace_range(auth_start + colon + 1..auth_start + at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}{}", redacted.join("&"));
    }
    out
}

fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| crate::vm::VmName::parse(h).is_ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Environment values are typed the way TOML would read them (`8080`, `true`),
/// falling back to a plain string (`test:///default`).
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !matches!(v, toml::Value::Table(_)))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// Lays `overlay` over `base`, table by table.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

fn insert_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = keys.split_last().ok_or("no key")?;
    let mut current = table;
    for key in parents {
        let entry = current.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| format!("`{key}` is not a section"))?;
    }
    // A string-typed key given a number-looking value (`worker.host = 01`) keeps it as text.
    let value = match (current.get(last), value) {
        (Some(toml::Value::String(_)), v) if !v.is_str() => toml::Value::String(v.to_string()),
        (_, v) => v,
    };
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.api.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url(), "sqlite://./hyperfleet-data/hyperfleet.db");
        assert_eq!(s.worker.libvirt_uri, "qemu:///system");
    }

    #[test]
    fn env_overrides_and_types() {
        let s = Settings::load(
            None,
            env(&[
                ("HYPERFLEET__WORKER__LIBVIRT_URI", "test:///default"),
                ("HYPERFLEET__API__LISTEN", "127.0.0.1:0"),
                ("HYPERFLEET__WORKER__LEASE_S", "5"),
                ("HYPERFLEET__DATA_DIR", "/var/lib/hf"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.worker.libvirt_uri, "test:///default");
        assert_eq!(s.worker.lease_s, 5);
        assert_eq!(s.database_url(), "sqlite:///var/lib/hf/hyperfleet.db");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Settings::load(None, env(&[("HYPERFLEET__API__LISTN", "x")])).unwrap_err().to_string();
        assert!(err.contains("api") && err.contains("listn"), "{err}");
        let err = Settings::load(None, env(&[("HYPERFLEET__NOPE", "1")])).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Settings::load(None, env(&[("HYPERFLEET__DATABASE__URL", "postgres://u:hunter2@db/hf?password=x")]))
            .unwrap();
        let shown = format!("{s:?} {}", s.to_redacted_toml());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://u:***@db/hf?password=***"), "{shown}");
    }

    #[test]
    fn example_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Settings::load(Some(&path), env(&[])).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen > 0, "no example config in {}", dir.display());
    }
}
