//! The seed system's API (`/api/...`, Flask), kept so its dashboard and scripts
//! keep working: same paths, same `{"success", "data"}` shapes and field names.
//! Unlike the seed, nothing reaches a shell, names are validated, power actions
//! go through the ledger, and a failure answers `success: false` with the error.
//! Deprecated: use `/api/v1`.

use std::time::Duration;

use hyperfleet_core::{
    Error,
    operation::OperationStatus,
    vm::{PowerParams, VmAction, VmName, VmState},
};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
};

pub struct SeedApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
pub struct SeedSystem {
    pub hostname: String,
    /// e.g. `up 3 days, 4 hours, 5 minutes`.
    pub uptime: String,
    pub cpu_count: String,
    /// `used/total MB (pct%)`.
    pub memory: String,
    /// `used/total (pct%)` of the data directory's filesystem.
    pub disk: String,
}

#[derive(Debug, Clone, Object)]
pub struct SeedSystemInfo {
    pub success: bool,
    #[oai(skip_serializing_if_is_none)]
    pub data: Option<SeedSystem>,
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct SeedVm {
    pub name: String,
    /// As `virsh domstate` prints it: `running`, `shut off`, `paused`, …
    pub state: String,
    pub cpu: String,
    /// e.g. `65536 KiB`.
    pub memory: String,
}

#[derive(Debug, Clone, Object)]
pub struct SeedVmList {
    pub success: bool,
    pub data: Vec<SeedVm>,
}

#[derive(Debug, Clone, Object)]
pub struct SeedIso {
    pub name: String,
    /// e.g. `651.0 MB`.
    pub size: String,
    pub path: String,
}

#[derive(Debug, Clone, Object)]
pub struct SeedIsoList {
    pub success: bool,
    pub data: Vec<SeedIso>,
}

/// The seed's command result, answered honestly from the operation.
#[derive(Debug, Clone, Object)]
pub struct SeedCommandResult {
    pub success: bool,
    pub output: String,
    pub error: String,
    pub returncode: i32,
    /// The operation that carried the action out (`/api/v1/operations/{id}`).
    pub operation_id: String,
}

/// The seed's clients read `success` (its HTTP status was always 200): it is
/// now `false` whenever the action failed or has not finished, with `error`
/// saying why — the seed said `true` for those too.
#[derive(Debug, ApiResponse)]
pub enum SeedCommand {
    /// The outcome; see `success`.
    #[oai(status = 200)]
    Done(Json<SeedCommandResult>),
}

#[derive(Debug, ApiResponse)]
pub enum SeedSystemAnswer {
    #[oai(status = 200)]
    Ok(Json<SeedSystemInfo>),
}

fn virsh_state(state: VmState) -> &'static str {
    match state {
        VmState::Blocked => "idle",
        VmState::Shutdown => "in shutdown",
        VmState::Shutoff => "shut off",
        VmState::Nostate => "no state",
        other => other.as_str(),
    }
}

fn uptime_text(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3_600, (secs % 3_600) / 60);
    let mut parts = Vec::new();
    for (n, unit) in [(d, "day"), (h, "hour"), (m, "minute")] {
        if n > 0 {
            parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        }
    }
    if parts.is_empty() { "up 0 minutes".into() } else { format!("up {}", parts.join(", ")) }
}

fn human(bytes: u64) -> String {
    let units = ["B", "K", "M", "G", "T", "P"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if v >= 10.0 || i == 0 { format!("{v:.0}{}", units[i]) } else { format!("{v:.1}{}", units[i]) }
}

fn percent(used: u64, total: u64) -> u64 {
    if total == 0 { 0 } else { (used as f64 * 100.0 / total as f64).round() as u64 }
}

#[OpenApi(prefix_path = "/api", tag = "Tag::Seed")]
impl SeedApi {
    /// System information of a host (the seed's `/api/system/info`).
    #[oai(path = "/system/info", method = "get", operation_id = "seed_system_info", deprecated)]
    async fn system_info(
        &self,
        _auth: ViewerAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
    ) -> ApiResult<SeedSystemAnswer> {
        let now = self.state.app.now();
        let hosts = self.state.app.hosts().await?;
        let chosen = match &host.0 {
            Some(h) => hosts.into_iter().find(|r| &r.name == h),
            None => hosts.into_iter().filter(|r| r.system.is_some()).max_by_key(|r| (r.online(now), r.last_heartbeat)),
        };
        let Some(info) = chosen.and_then(|h| h.system).map(|j| j.0) else {
            let what = host
                .0
                .as_deref()
                .map_or_else(|| "system facts of any host".to_owned(), |h| format!("system facts of host `{h}`"));
            let error = Some(format!("no {what} reported yet"));
            return Ok(SeedSystemAnswer::Ok(Json(SeedSystemInfo { success: false, data: None, error })));
        };
        let mib = |b: u64| b / (1024 * 1024);
        let disk = info.disks.iter().find(|d| d.role == "data_dir").or(info.disks.first());
        Ok(SeedSystemAnswer::Ok(Json(SeedSystemInfo {
            success: true,
            data: Some(SeedSystem {
                hostname: info.hostname,
                uptime: uptime_text(info.uptime_s),
                cpu_count: info.cpus.to_string(),
                memory: format!(
                    "{}/{} MB ({}%)",
                    mib(info.memory_used_bytes),
                    mib(info.memory_total_bytes),
                    percent(info.memory_used_bytes, info.memory_total_bytes)
                ),
                disk: disk.map_or_else(String::new, |d| {
                    format!(
                        "{}/{} ({}%)",
                        human(d.used_bytes),
                        human(d.total_bytes),
                        percent(d.used_bytes, d.total_bytes)
                    )
                }),
            }),
            error: None,
        })))
    }

    /// All VMs (the seed's `/api/vms/list`).
    #[oai(path = "/vms/list", method = "get", operation_id = "seed_vm_list", deprecated)]
    async fn vm_list(&self, _auth: ViewerAuth) -> ApiResult<Json<SeedVmList>> {
        let data = self
            .state
            .app
            .vms()
            .await?
            .into_iter()
            .map(|v| SeedVm {
                state: virsh_state(v.state).to_owned(),
                cpu: v.vcpus.to_string(),
                memory: format!("{} KiB", v.memory_kib),
                name: v.name,
            })
            .collect();
        Ok(Json(SeedVmList { success: true, data }))
    }

    /// ISOs (the seed's `/api/isos/list`).
    #[oai(path = "/isos/list", method = "get", operation_id = "seed_iso_list", deprecated)]
    async fn iso_list(&self, _auth: ViewerAuth) -> ApiResult<Json<SeedIsoList>> {
        let data = self
            .state
            .app
            .isos()
            .await?
            .into_iter()
            .map(|i| SeedIso {
                size: format!("{:.1} MB", i.size_bytes as f64 / (1024.0 * 1024.0)),
                name: i.name,
                path: i.path,
            })
            .collect();
        Ok(Json(SeedIsoList { success: true, data }))
    }

    /// Start a VM and wait for the outcome (the seed's `POST /api/vms/{name}/start`).
    #[oai(path = "/vms/:name/start", method = "post", operation_id = "seed_vm_start", deprecated)]
    async fn start(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
    ) -> ApiResult<SeedCommand> {
        self.act(&auth.0, &name, VmAction::Start).await
    }

    /// Shut a VM down and wait for the outcome (the seed's `POST /api/vms/{name}/shutdown`).
    #[oai(path = "/vms/:name/shutdown", method = "post", operation_id = "seed_vm_shutdown", deprecated)]
    async fn shutdown(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
    ) -> ApiResult<SeedCommand> {
        self.act(&auth.0, &name, VmAction::Shutdown).await
    }

    /// Reboot a VM and wait for the outcome (the seed's `POST /api/vms/{name}/reboot`).
    #[oai(path = "/vms/:name/reboot", method = "post", operation_id = "seed_vm_reboot", deprecated)]
    async fn reboot(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
    ) -> ApiResult<SeedCommand> {
        self.act(&auth.0, &name, VmAction::Reboot).await
    }

    /// Destroy a VM and wait for the outcome (the seed's `POST /api/vms/{name}/destroy`).
    #[oai(path = "/vms/:name/destroy", method = "post", operation_id = "seed_vm_destroy", deprecated)]
    async fn destroy(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
    ) -> ApiResult<SeedCommand> {
        self.act(&auth.0, &name, VmAction::Destroy).await
    }
}

impl SeedApi {
    async fn act(
        &self,
        who: &hyperfleet_core::auth::Principal,
        name: &str,
        action: VmAction,
    ) -> ApiResult<SeedCommand> {
        let vm = VmName::parse(name)?;
        let origin = self.state.origin(who, None)?;
        let params = PowerParams::default();
        let wait = match action {
            VmAction::Shutdown => Duration::from_secs(u64::from(PowerParams::DEFAULT_SHUTDOWN_TIMEOUT_S) + 30),
            _ => Duration::from_secs(60),
        };
        let submitted = match self.state.app.vm_power(&vm, None, action, params, origin).await {
            Ok(submitted) => submitted,
            // The seed's scripts read `success`: an action refused before it ran
            // (no such VM, an ambiguous name) answers in its envelope, as virsh's
            // failures did. Outages stay 503s.
            Err(e @ (Error::NotFound { .. } | Error::Conflict { .. } | Error::InvalidInput { .. })) => {
                return Ok(SeedCommand::Done(Json(SeedCommandResult {
                    success: false,
                    output: String::new(),
                    error: e.to_string(),
                    returncode: 1,
                    operation_id: String::new(),
                })));
            }
            Err(e) => return Err(e.into()),
        };
        let op = self.state.app.wait_finished(submitted.operation.id, wait).await?;
        let result = |success: bool, output: String, error: String, code: i32| SeedCommandResult {
            success,
            output,
            error,
            returncode: code,
            operation_id: op.id.to_string(),
        };
        Ok(match op.status {
            OperationStatus::Succeeded => SeedCommand::Done(Json(result(
                true,
                format!("Domain '{vm}' {}\n", past_tense(action)),
                String::new(),
                0,
            ))),
            OperationStatus::Failed | OperationStatus::Cancelled => SeedCommand::Done(Json(result(
                false,
                String::new(),
                op.last_error.clone().unwrap_or_else(|| format!("operation {}", op.status)),
                1,
            ))),
            _ => SeedCommand::Done(Json(result(
                false,
                String::new(),
                format!("operation {} is still {} after {} s", op.id, op.status, wait.as_secs()),
                1,
            ))),
        })
    }
}

fn past_tense(action: VmAction) -> &'static str {
    match action {
        VmAction::Start => "started",
        VmAction::Shutdown => "is being shutdown",
        VmAction::Reboot => "is being rebooted",
        VmAction::Destroy => "destroyed",
        VmAction::Suspend => "suspended",
        VmAction::Resume => "resumed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_formats() {
        assert_eq!(uptime_text(3 * 86_400 + 3_600 + 120), "up 3 days, 1 hour, 2 minutes");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.0G");
        assert_eq!(human(50 * 1024 * 1024 * 1024), "50G");
        assert_eq!(virsh_state(VmState::Shutoff), "shut off");
    }
}
