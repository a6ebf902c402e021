//! `/api/v1/vms`: the inventory, and power actions as operations.

use hyperfleet_core::vm::{PowerParams, VmAction, VmName};
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
    /// List VMs on every host.
    #[oai(path = "/vms", method = "get", operation_id = "vm_list")]
    async fn list(&self, _auth: ViewerAuth) -> ApiResult<Json<VmListView>> {
        let items = self.state.app.vms().await?.into_iter().map(VmView::from).collect();
        Ok(Json(VmListView { items }))
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
