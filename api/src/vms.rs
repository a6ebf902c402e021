//! `/api/v1/vms`: the inventory, and power actions as operations.

use hyperfleet_core::{
    store::{VmCursor, VmFilter},
    vm::{HostName, PowerParams, VmAction, VmName, VmState},
};
use poem_openapi::{
    Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};

use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
    submit::Enqueued,
    views::{VmListView, VmView},
};

pub struct VmsApi {
    pub state: AppState,
}

/// Options of a shutdown.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ShutdownRequest {
    /// Seconds to wait for the guest to reach SHUTOFF (default 120, at most 3600).
    #[oai(validator(minimum(value = "1"), maximum(value = "3600")))]
    pub timeout_s: Option<u32>,
    /// Destroy the VM if it has not shut down when the timeout expires.
    pub force: Option<bool>,
}

/// Power actions other than shutdown take no options; an empty object is accepted.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PowerRequest {}

/// The default and largest page of `GET /api/v1/vms`.
pub const VM_PAGE: (u32, u32) = (100, 500);

/// The VM list's filter from its (already pattern-checked) inputs: the rules
/// the API and the dashboard share.
pub fn vm_filter(
    host: Option<String>,
    state: Option<VmState>,
    name: Option<String>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> hyperfleet_core::Result<VmFilter> {
    let limit = limit.unwrap_or(VM_PAGE.0);
    if !(1..=VM_PAGE.1).contains(&limit) {
        return Err(hyperfleet_core::Error::invalid("invalid_limit", "`limit` must be 1-500"));
    }
    let name = name.filter(|n| !n.is_empty());
    if let Some(n) = &name
        && (n.len() > 64 || !n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(hyperfleet_core::Error::invalid(
            "invalid_name_filter",
            "`name` holds only A-Z a-z 0-9 . _ - (1-64)",
        ));
    }
    Ok(VmFilter {
        host: host.map(|h| HostName::parse(&h)).transpose()?.map(HostName::into_string),
        state,
        name,
        cursor: cursor.map(VmCursor::parse).transpose()?,
        limit,
    })
}

impl VmsApi {
    async fn act(
        &self,
        who: &hyperfleet_core::auth::Principal,
        name: &str,
        host: Option<String>,
        action: VmAction,
        params: PowerParams,
        key: Option<String>,
    ) -> ApiResult<Enqueued> {
        let vm = VmName::parse(name)?;
        let origin = self.state.origin(who, key)?;
        let submitted = self.state.app.vm_power(&vm, host.as_deref(), action, params, origin).await?;
        Ok(Enqueued::answer(&self.state.app, submitted).await?)
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Vms")]
impl VmsApi {
    /// List VMs on every host, by name then host, a page at a time.
    #[oai(path = "/vms", method = "get", operation_id = "vm_list")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        /// Only VMs on this host.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        host: Query<Option<String>>,
        /// Only VMs in this state.
        state: Query<Option<VmState>>,
        /// Only VMs whose name contains this text (ASCII case ignored).
        #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
        name: Query<Option<String>>,
        /// Page size, 1-500 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<VmListView>> {
        let filter = vm_filter(host.0, state.0, name.0, limit.0, cursor.0.as_deref())?;
        let page = self.state.app.list_vms(&filter).await?;
        Ok(Json(VmListView {
            items: page.items.into_iter().map(VmView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// Get one VM from the inventory.
    #[oai(path = "/vms/:name", method = "get", operation_id = "vm_get")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        /// The VM's host; needed only when the name exists on several hosts.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        host: Query<Option<String>>,
    ) -> ApiResult<Json<VmView>> {
        let vm = VmName::parse(&name)?;
        Ok(Json(self.state.app.vm(vm.as_str(), host.0.as_deref()).await?.into()))
    }

    /// Start a VM.
    #[oai(path = "/vms/:name/start", method = "post", operation_id = "vm_start")]
    async fn start(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        _body: Json<Option<PowerRequest>>,
    ) -> ApiResult<Enqueued> {
        self.act(&auth.0, &name, host.0, VmAction::Start, PowerParams::default(), key.0).await
    }

    /// Shut a VM down gracefully (ACPI), waiting up to `timeout_s`; with `force`, destroy it after the timeout.
    #[oai(path = "/vms/:name/shutdown", method = "post", operation_id = "vm_shutdown")]
    async fn shutdown(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        body: Json<Option<ShutdownRequest>>,
    ) -> ApiResult<Enqueued> {
        let params = body.0.map_or_else(PowerParams::default, |b| PowerParams {
            timeout_s: b.timeout_s,
            force: b.force.unwrap_or(false),
        });
        self.act(&auth.0, &name, host.0, VmAction::Shutdown, params, key.0).await
    }

    /// Reboot a VM.
    #[oai(path = "/vms/:name/reboot", method = "post", operation_id = "vm_reboot")]
    async fn reboot(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        _body: Json<Option<PowerRequest>>,
    ) -> ApiResult<Enqueued> {
        self.act(&auth.0, &name, host.0, VmAction::Reboot, PowerParams::default(), key.0).await
    }

    /// Destroy (power off) a VM at once.
    #[oai(path = "/vms/:name/destroy", method = "post", operation_id = "vm_destroy")]
    async fn destroy(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        _body: Json<Option<PowerRequest>>,
    ) -> ApiResult<Enqueued> {
        self.act(&auth.0, &name, host.0, VmAction::Destroy, PowerParams::default(), key.0).await
    }

    /// Suspend (pause) a running VM.
    #[oai(path = "/vms/:name/suspend", method = "post", operation_id = "vm_suspend")]
    async fn suspend(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        _body: Json<Option<PowerRequest>>,
    ) -> ApiResult<Enqueued> {
        self.act(&auth.0, &name, host.0, VmAction::Suspend, PowerParams::default(), key.0).await
    }

    /// Resume a paused VM.
    #[oai(path = "/vms/:name/resume", method = "post", operation_id = "vm_resume")]
    async fn resume(
        &self,
        auth: OperatorAuth,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] name: Path<String>,
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))] host: Query<Option<String>>,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        _body: Json<Option<PowerRequest>>,
    ) -> ApiResult<Enqueued> {
        self.act(&auth.0, &name, host.0, VmAction::Resume, PowerParams::default(), key.0).await
    }
}
