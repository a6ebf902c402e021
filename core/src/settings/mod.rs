//! One typed [`Settings`]: a TOML file plus `HYPERFLEET__<SECTION>__<KEY>`
//! environment overrides. Unknown keys are rejected with their full path, and
//! secrets (passwords in the database URL) never reach `Debug` or the log.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

mod alerts;
mod api;
mod backups;
mod channel;
mod channel_toml;
mod metrics;
mod secret;
mod sections;
mod slots;

pub use alerts::*;
pub use api::{ApiSettings, TlsSettings};
pub use backups::BackupSettings;
pub use channel::{Channel, Email, Hook, SignedHook, SmtpCredentials, SmtpSecurity, Transport};
pub use metrics::{MetricsListen, MetricsSettings};
pub use secret::Secret;
use sections::default_data_dir;
pub use sections::*;
pub use slots::SlotSettings;

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
    #[serde(default)]
    pub alerts: AlertSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub backups: BackupSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
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
            crate::vm::HostName::parse(host).map_err(|_| ConfigError::Invalid {
                key: "worker.host",
                message: "host names are 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'".into(),
            })?;
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid { key: "database.max_connections", message: "must be at least 1".into() });
        }
        if !(100..=60_000).contains(&self.database.acquire_timeout_ms) {
            return Err(ConfigError::Invalid {
                key: "database.acquire_timeout_ms",
                message: "must be 100-60000".into(),
            });
        }
        for class in crate::operation::WorkClass::ALL {
            if !(1..=1024).contains(&self.worker.slots.of(*class)) {
                return Err(ConfigError::Invalid {
                    key: "worker.slots",
                    message: format!("`{}` must be 1-1024", class.as_str()),
                });
            }
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
        self.alerts.check()?;
        if !(1..=86_400).contains(&self.backups.tool_timeout_s) {
            return Err(ConfigError::Invalid { key: "backups.tool_timeout_s", message: "must be 1-86400".into() });
        }
        if !(1..=87_600).contains(&self.backups.max_age_h) {
            return Err(ConfigError::Invalid { key: "backups.max_age_h", message: "must be 1-87600".into() });
        }
        if let Err(e) = crate::backup::boot_marker(&self.backups.boot_marker) {
            return Err(ConfigError::Invalid { key: "backups.boot_marker", message: e.to_string() });
        }
        if let Err(e) = crate::backup::boot_timeout(self.backups.boot_timeout_s) {
            return Err(ConfigError::Invalid { key: "backups.boot_timeout_s", message: e.to_string() });
        }
        if !(64..=1_048_576).contains(&self.backups.boot_max_memory_mib) {
            return Err(ConfigError::Invalid {
                key: "backups.boot_max_memory_mib",
                message: "must be 64-1048576".into(),
            });
        }
        if !(1..=256).contains(&self.backups.boot_max_vcpus) {
            return Err(ConfigError::Invalid { key: "backups.boot_max_vcpus", message: "must be 1-256".into() });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid { key: "log.format", message: "must be `text` or `json`".into() });
        }
        Ok(())
    }

    /// The effective database URL (with the secret in it; never log this).
    /// The audit chain's key: `[audit] key`, else `<data_dir>/audit.key` (created if missing).
    pub fn audit_key(&self) -> crate::Result<crate::audit::AuditKey> {
        match &self.audit.key {
            Some(secret) => {
                let text = secret.reveal().map_err(|e| crate::Error::invalid("invalid_audit_key", e))?;
                crate::audit::AuditKey::new(text.into_bytes())
            }
            None => crate::audit::AuditKey::load_or_create(&self.data_dir.join("audit.key")),
        }
    }

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

    /// The base of links in notifications.
    pub fn public_url(&self) -> String {
        let url = self.alerts.public_url.clone().unwrap_or_else(|| {
            let scheme = if self.api.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{}", self.api.listen)
        });
        url.trim_end_matches('/').to_owned()
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
            .field("alerts", &self.alerts)
            .field("backups", &self.backups)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
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
        .filter(|h| crate::vm::HostName::parse(h).is_ok())
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
