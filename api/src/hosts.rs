//! `/api/v1/hosts` and `/api/v1/isos`: what the workers report about their hosts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hyperfleet_core::{
    Timestamp,
    auth::{Principal, Role},
    store::{HostRecord, IsoRecord, SystemInfo, VmRecord},
    vm::HostName,
};
use poem_openapi::{Enum, Object, OpenApi, param::Path, payload::Json};

use crate::{AppState, Tag, auth::ViewerAuth, error::ApiResult};

pub struct HostsApi {
    pub state: AppState,
}

/// A host's worker as its heartbeats tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum HostStatus {
    /// Heart-beating and serving its queues.
    Online,
    /// Heart-beating, but it cannot serve its queues (see `problem`).
    Degraded,
    /// Heartbeats missed.
    Offline,
    /// Its worker shut down cleanly.
    Stopped,
}

#[derive(Debug, Clone, Object)]
pub struct HostView {
    pub name: String,
    /// The worker's libvirt URI; shown to operators and admins only (it can
    /// name hosts, users and key files).
    #[oai(skip_serializing_if_is_none)]
    pub libvirt_uri: Option<String>,
    pub status: HostStatus,
    /// Why the worker cannot serve its queues, as of its last heartbeat.
    #[oai(skip_serializing_if_is_none)]
    pub problem: Option<String>,
    pub online: bool,
    pub version: String,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    pub heartbeat_s: i32,
    /// VMs on this host by state (`running`, `shutoff`, …).
    pub vm_counts: BTreeMap<String, i64>,
    pub vm_total: i64,
}

impl HostView {
    fn new(h: HostRecord, vms: &[VmRecord], now: Timestamp, viewer: &Principal) -> Self {
        let mut vm_counts = BTreeMap::new();
        for vm in vms.iter().filter(|v| v.host == h.name) {
            *vm_counts.entry(vm.state.as_str().to_owned()).or_insert(0) += 1;
        }
        let online = h.online(now);
        let status = if online && h.problem.is_some() {
            HostStatus::Degraded
        } else if online {
            HostStatus::Online
        } else if h.stopped_at.is_some() {
            HostStatus::Stopped
        } else {
            HostStatus::Offline
        };
        Self {
            vm_total: vm_counts.values().sum(),
            vm_counts,
            status,
            online,
            name: h.name,
            libvirt_uri: (viewer.role >= Role::Operator).then_some(h.libvirt_uri),
            version: h.version,
            worker_id: h.worker_id,
            started_at: h.started_at.0,
            last_heartbeat: h.last_heartbeat.0,
            heartbeat_s: h.heartbeat_s,
            problem: h.problem,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct HostListView {
    pub items: Vec<HostView>,
}

#[derive(Debug, Clone, Object)]
pub struct DiskView {
    /// `data_dir`, `image_dir` or `iso_dir`.
    pub role: String,
    pub path: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

/// System facts the host's worker reported with its last heartbeat.
#[derive(Debug, Clone, Object)]
pub struct SystemView {
    pub host: String,
    pub hostname: String,
    pub uptime_s: u64,
    pub cpus: u32,
    pub load_avg_1m: f64,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub disks: Vec<DiskView>,
    pub libvirt_version: String,
    pub hypervisor_version: String,
    pub reported_at: DateTime<Utc>,
    pub online: bool,
}

impl SystemView {
    pub fn new(host: &HostRecord, s: SystemInfo, now: Timestamp) -> Self {
        Self {
            host: host.name.clone(),
            hostname: s.hostname,
            uptime_s: s.uptime_s,
            cpus: s.cpus,
            load_avg_1m: s.load_avg_1m,
            memory_total_bytes: s.memory_total_bytes,
            memory_used_bytes: s.memory_used_bytes,
            disks: s
                .disks
                .into_iter()
                .map(|d| DiskView { role: d.role, path: d.path, total_bytes: d.total_bytes, used_bytes: d.used_bytes })
                .collect(),
            libvirt_version: s.libvirt_version,
            hypervisor_version: s.hypervisor_version,
            reported_at: s.reported_at.0,
            online: host.online(now),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct IsoView {
    pub host: String,
    pub name: String,
    pub path: String,
    pub size_bytes: i64,
    pub modified_at: DateTime<Utc>,
    /// `verified` (matches its `.sha256` sidecar), `mismatch` or `unverified` (no sidecar).
    pub checksum_status: String,
    #[oai(skip_serializing_if_is_none)]
    pub sha256: Option<String>,
}

impl From<IsoRecord> for IsoView {
    fn from(i: IsoRecord) -> Self {
        Self {
            host: i.host,
            name: i.name,
            path: i.path,
            size_bytes: i.size_bytes,
            modified_at: i.modified_at.0,
            checksum_status: i.checksum_status,
            sha256: i.sha256,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct IsoListView {
    pub items: Vec<IsoView>,
}

/// Host names follow the VM name rules.
fn host_name(text: &str) -> hyperfleet_core::Result<String> {
    HostName::parse(text).map(HostName::into_string)
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Hosts")]
impl HostsApi {
    /// List hosts: online or offline from their heartbeats, with VM counts by state.
    #[oai(path = "/hosts", method = "get", operation_id = "host_list")]
    async fn list(&self, auth: ViewerAuth) -> ApiResult<Json<HostListView>> {
        let (hosts, vms) = (self.state.app.hosts().await?, self.state.app.vms().await?);
        let now = self.state.app.now();
        Ok(Json(HostListView { items: hosts.into_iter().map(|h| HostView::new(h, &vms, now, &auth.0)).collect() }))
    }

    /// Get one host.
    #[oai(path = "/hosts/:host", method = "get", operation_id = "host_get")]
    async fn get(
        &self,
        auth: ViewerAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Path<String>,
    ) -> ApiResult<Json<HostView>> {
        let record = self.state.app.host(&host_name(&host)?).await?;
        let vms = self.state.app.vms().await?;
        Ok(Json(HostView::new(record, &vms, self.state.app.now(), &auth.0)))
    }

    /// System facts of one host (CPU, memory, disks, libvirt and QEMU versions).
    #[oai(path = "/hosts/:host/system", method = "get", operation_id = "host_system")]
    async fn system(
        &self,
        _auth: ViewerAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Path<String>,
    ) -> ApiResult<Json<SystemView>> {
        let record = self.state.app.host(&host_name(&host)?).await?;
        let info = record.system.clone().map(|j| j.0).ok_or_else(|| {
            hyperfleet_core::Error::not_found(
                "system_info_not_reported",
                format!("system facts of host `{}`", record.name),
            )
        })?;
        Ok(Json(SystemView::new(&record, info, self.state.app.now())))
    }

    /// ISO images in every host's `worker.iso_dir`.
    #[oai(path = "/isos", method = "get", operation_id = "iso_list")]
    async fn isos(&self, _auth: ViewerAuth) -> ApiResult<Json<IsoListView>> {
        Ok(Json(IsoListView { items: self.state.app.isos().await?.into_iter().map(IsoView::from).collect() }))
    }
}
