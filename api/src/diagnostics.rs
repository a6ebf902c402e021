//! `/api/v1/diagnostics`: exercise the queue without a hypervisor.

use hyperfleet_core::operation::NoopParams;
use poem_openapi::{Object, OpenApi, param::Header, payload::Json};

use crate::{AppState, Tag, auth::OperatorAuth, error::ApiResult, submit::Enqueued};

pub struct DiagnosticsApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct NoopRequest {
    /// How long each attempt sleeps, in milliseconds (at most one hour).
    #[oai(validator(maximum(value = "60000")))]
    pub sleep_ms: Option<u64>,
    /// The first `fail_times` attempts fail with a transient error.
    pub fail_times: Option<u32>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Diagnostics")]
impl DiagnosticsApi {
    /// Enqueue a `noop` operation (it goes through exactly the path VM operations take).
    #[oai(path = "/diagnostics/noop", method = "post", operation_id = "diagnostic_noop")]
    async fn noop(
        &self,
        auth: OperatorAuth,
        #[oai(name = "Idempotency-Key", validator(pattern = "^[!-~]{1,200}$"))] key: Header<Option<String>>,
        body: Json<Option<NoopRequest>>,
    ) -> ApiResult<Enqueued> {
        let params = body.0.map_or_else(NoopParams::default, |b| NoopParams {
            sleep_ms: b.sleep_ms.unwrap_or(0),
            fail_times: b.fail_times.unwrap_or(0),
        });
        let origin = self.state.origin(&auth.0, key.0)?;
        let submitted = self.state.app.noop(params, origin).await?;
        Ok(Enqueued::answer(&self.state.app, submitted).await?)
    }
}
