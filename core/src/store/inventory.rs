//! Hosts (worker registrations with heartbeats) and the VM inventory. Workers
//! write them; the API only reads them and never calls libvirt itself.

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, types::Json};

use super::{Store, read_db, with_db};
use crate::{Error, Result, Timestamp};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HostRecord {
    pub name: String,
    pub libvirt_uri: String,
    pub worker_id: String,
    pub version: String,
    pub started_at: Timestamp,
    pub last_heartbeat: Timestamp,
    /// The worker's heartbeat period; it counts as offline after three missed beats.
    pub heartbeat_s: i32,
    /// Set when the worker stopped cleanly.
    pub stopped_at: Option<Timestamp>,
    pub system: Option<Json<SystemInfo>>,
    /// Why the worker cannot serve its queues right now, as of its last heartbeat.
    pub problem: Option<String>,
}

impl HostRecord {
    /// Missed heartbeats after which a host counts as offline.
    pub const MISSED_BEATS: i64 = 3;

    pub fn online(&self, now: Timestamp) -> bool {
        let window = i64::from(self.heartbeat_s.max(1)) * Self::MISSED_BEATS * 1000;
        self.stopped_at.is_none() && (now.0 - self.last_heartbeat.0).num_milliseconds() < window
    }
}

/// What a worker reports about its machine with its heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub hostname: String,
    pub uptime_s: u64,
    pub cpus: u32,
    pub load_avg_1m: f64,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub disks: Vec<DiskUsage>,
    /// e.g. `10.0.0`.
    pub libvirt_version: String,
    /// The hypervisor's version as libvirt reports it (QEMU's for `qemu://`).
    pub hypervisor_version: String,
    pub reported_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// `data_dir`, `image_dir` or `iso_dir`.
    pub role: String,
    pub path: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

/// An ISO image in a host's `worker.iso_dir`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct IsoRecord {
    pub host: String,
    pub name: String,
    pub path: String,
    pub size_bytes: i64,
    pub modified_at: Timestamp,
    /// `verified` (matches its `.sha256` sidecar), `mismatch`, or `unverified` (no sidecar).
    pub checksum_status: String,
    pub sha256: Option<String>,
    pub updated_at: Timestamp,
}

const HOST_COLUMNS: &str =
    "name, libvirt_uri, worker_id, version, started_at, last_heartbeat, heartbeat_s, stopped_at, system, problem";

/// One domain as its host's worker last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct VmRecord {
    pub host: String,
    pub name: String,
    pub uuid: String,
    /// `running`, `blocked`, `paused`, `shutdown`, `shutoff`, `crashed`, `pmsuspended`, `nostate`.
    pub state: crate::vm::VmState,
    /// libvirt's reason for the state, e.g. `booted`, `user`, `destroyed`.
    pub state_reason: String,
    pub vcpus: i32,
    pub memory_kib: i64,
    pub autostart: bool,
    pub persistent: bool,
    pub updated_at: Timestamp,
}

pub(super) const VM_COLUMNS: &str =
    "host, name, uuid, state, state_reason, vcpus, memory_kib, autostart, persistent, updated_at";

impl Store {
    /// Registers (or re-registers) a worker for `host` and records a heartbeat.
    pub async fn register_host(
        &self,
        host: &str,
        libvirt_uri: &str,
        worker_id: &str,
        version: &str,
        heartbeat_s: i32,
    ) -> Result<()> {
        let now = self.now();
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>(
                "INSERT INTO hosts (name, libvirt_uri, worker_id, version, started_at, last_heartbeat, heartbeat_s) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (name) DO UPDATE SET libvirt_uri = excluded.libvirt_uri, \
                 worker_id = excluded.worker_id, version = excluded.version, started_at = excluded.started_at, \
                 last_heartbeat = excluded.last_heartbeat, heartbeat_s = excluded.heartbeat_s, stopped_at = NULL, \
                 problem = NULL",
            )
            .bind(host)
            .bind(libvirt_uri)
            .bind(worker_id)
            .bind(version)
            .bind(now)
            .bind(heartbeat_s)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Records a heartbeat, with fresh system facts when given and what keeps
    /// the worker from serving its queues (`None`: nothing).
    pub async fn heartbeat(
        &self,
        host: &str,
        worker_id: &str,
        system: Option<&SystemInfo>,
        problem: Option<&str>,
    ) -> Result<()> {
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>(
                "UPDATE hosts SET last_heartbeat = $3, system = COALESCE($4, system), problem = $5 \
                 WHERE name = $1 AND worker_id = $2",
            )
            .bind(host)
            .bind(worker_id)
            .bind(self.now())
            .bind(system.map(Json))
            .bind(problem)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// A worker that stops cleanly says so: its host is offline at once.
    pub async fn host_stopped(&self, host: &str, worker_id: &str) -> Result<()> {
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>("UPDATE hosts SET stopped_at = $3 WHERE name = $1 AND worker_id = $2")
                .bind(host)
                .bind(worker_id)
                .bind(self.now())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn hosts(&self) -> Result<Vec<HostRecord>> {
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY name");
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HostRecord>(AssertSqlSafe(sql.as_str())).fetch_all(pool).await
        })?)
    }

    pub async fn host(&self, name: &str) -> Result<HostRecord> {
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE name = $1");
        let found: Option<HostRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, HostRecord>(AssertSqlSafe(sql.as_str())).bind(name).fetch_optional(pool).await
        })?;
        found.ok_or_else(|| Error::not_found("host_not_found", format!("host `{name}`")))
    }

    /// Replaces `host`'s ISO catalogue.
    pub async fn replace_isos(&self, host: &str, isos: &[IsoRecord]) -> Result<()> {
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            sqlx::query::<Db>("DELETE FROM isos WHERE host = $1").bind(host).execute(&mut *tx).await?;
            for iso in isos {
                sqlx::query::<Db>(
                    "INSERT INTO isos (host, name, path, size_bytes, modified_at, checksum_status, sha256, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&iso.host)
                .bind(&iso.name)
                .bind(&iso.path)
                .bind(iso.size_bytes)
                .bind(iso.modified_at)
                .bind(&iso.checksum_status)
                .bind(&iso.sha256)
                .bind(iso.updated_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn isos(&self) -> Result<Vec<IsoRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, IsoRecord>(
                "SELECT host, name, path, size_bytes, modified_at, checksum_status, sha256, updated_at \
                 FROM isos ORDER BY host, name",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// Replaces `host`'s whole inventory with what libvirt reported.
    /// A periodic listing may have started before an operation's own refresh
    /// and finish after it: rows only move forward in observation time, and
    /// a VM missing from the listing is removed only if not seen since `observed`.
    pub async fn replace_inventory(&self, host: &str, vms: &[VmRecord], observed: Timestamp) -> Result<()> {
        let names: Vec<&str> = vms.iter().map(|v| v.name.as_str()).collect();
        let present: Vec<String> = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, String>("SELECT name FROM vms WHERE host = $1").bind(host).fetch_all(pool).await
        })?;
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            for gone in present.iter().filter(|n| !names.contains(&n.as_str())) {
                sqlx::query::<Db>("DELETE FROM vms WHERE host = $1 AND name = $2 AND updated_at < $3")
                    .bind(host)
                    .bind(gone)
                    .bind(observed)
                    .execute(&mut *tx)
                    .await?;
            }
            for vm in vms {
                upsert_vm::<Db>(&mut tx, vm).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Updates one VM's row (after an operation on it), or removes it when gone.
    pub async fn refresh_vm(&self, host: &str, name: &str, vm: Option<&VmRecord>) -> Result<()> {
        with_db!(self, |pool, Db| {
            let mut tx = pool.begin().await?;
            match vm {
                Some(vm) => upsert_vm::<Db>(&mut tx, vm).await?,
                None => {
                    sqlx::query::<Db>("DELETE FROM vms WHERE host = $1 AND name = $2")
                        .bind(host)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn vms(&self) -> Result<Vec<VmRecord>> {
        let sql = format!("SELECT {VM_COLUMNS} FROM vms ORDER BY name, host");
        Ok(read_db!(self, |pool, Db| sqlx::query_as::<Db, VmRecord>(AssertSqlSafe(sql.as_str()))
            .fetch_all(pool)
            .await)?)
    }

    /// The VM called `name`; `host` is needed only when the name exists on several hosts.
    pub async fn vm(&self, name: &str, host: Option<&str>) -> Result<VmRecord> {
        let sql = format!("SELECT {VM_COLUMNS} FROM vms WHERE name = $1 AND ($2 IS NULL OR host = $2) ORDER BY host");
        let mut found: Vec<VmRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, VmRecord>(AssertSqlSafe(sql.as_str())).bind(name).bind(host).fetch_all(pool).await
        })?;
        match found.len() {
            0 => Err(Error::not_found("vm_not_found", format!("VM `{name}`"))),
            1 => Ok(found.remove(0)),
            _ => Err(Error::conflict(
                "ambiguous_vm",
                format!(
                    "VM `{name}` exists on several hosts ({}); say which with `?host=`",
                    found.iter().map(|v| v.host.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

async fn upsert_vm<Db>(tx: &mut sqlx::Transaction<'_, Db>, vm: &VmRecord) -> Result<(), sqlx::Error>
where
    Db: sqlx::Database,
    for<'c> &'c mut Db::Connection: sqlx::Executor<'c, Database = Db>,
    for<'q> Db::Arguments: sqlx::IntoArguments<Db>,
    for<'q> String: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    for<'q> i32: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    for<'q> i64: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    for<'q> bool: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    for<'q> Timestamp: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    sqlx::query::<Db>(
        "INSERT INTO vms (host, name, uuid, state, state_reason, vcpus, memory_kib, autostart, persistent, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (host, name) DO UPDATE SET uuid = excluded.uuid, \
         state = excluded.state, state_reason = excluded.state_reason, vcpus = excluded.vcpus, \
         memory_kib = excluded.memory_kib, autostart = excluded.autostart, persistent = excluded.persistent, \
         updated_at = excluded.updated_at WHERE vms.updated_at <= excluded.updated_at",
    )
    .bind(vm.host.clone())
    .bind(vm.name.clone())
    .bind(vm.uuid.clone())
    .bind(vm.state.as_str().to_owned())
    .bind(vm.state_reason.clone())
    .bind(vm.vcpus)
    .bind(vm.memory_kib)
    .bind(vm.autostart)
    .bind(vm.persistent)
    .bind(vm.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
