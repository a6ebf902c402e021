//! `/api/v1/operations`: the ledger, read and steered.

use hyperfleet_core::{
    Error, OperationId, Timestamp,
    operation::{ErrorClass, OperationKind, OperationStatus},
    store::OperationFilter,
};
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    AppState, Tag,
    auth::{OperatorAuth, ViewerAuth},
    error::ApiResult,
    request_id::current_request_id,
    views::{AttemptView, OperationPageView, OperationView},
};

pub struct OperationsApi {
    pub state: AppState,
}

/// A list's `limit`: 1-500, default 50.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, Error> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("invalid_limit", "`limit` must be 1-500"));
    }
    Ok(limit)
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Operations")]
impl OperationsApi {
    /// List operations, newest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/operations", method = "get", operation_id = "operation_list")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        /// Only operations in this status.
        status: Query<Option<OperationStatus>>,
        /// Only operations of this kind.
        kind: Query<Option<OperationKind>>,
        /// Only operations on this VM.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        vm: Query<Option<String>>,
        /// Only operations on this host.
        #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
        host: Query<Option<String>>,
        /// Created at or after this time (RFC 3339).
        since: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// Created before this time (RFC 3339).
        until: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// Only operations whose last error is of this class.
        error_class: Query<Option<ErrorClass>>,
        /// Only operations requested by this principal: a token's name, or
        /// `schedule:NAME` for a schedule's fires.
        #[oai(validator(pattern = "^[A-Za-z0-9._@:-]{1,80}$"))]
        requested_by: Query<Option<String>>,
        /// Only operations whose last error contains this text (ASCII case ignored).
        #[oai(validator(min_length = 1, max_length = 200))]
        error_text: Query<Option<String>>,
        /// Page size, 1-500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<uuid::Uuid>>,
    ) -> ApiResult<Json<OperationPageView>> {
        let limit = page_limit(limit.0)?;
        let filter = OperationFilter {
            status: status.0,
            kind: kind.0,
            host: host.0,
            vm: vm.0,
            since: since.0.map(Timestamp),
            until: until.0.map(Timestamp),
            error_class: error_class.0,
            requested_by: requested_by.0,
            error_text: error_text.0,
            cursor: cursor.0.map(OperationId),
            limit,
        };
        let page = self.state.app.list_operations(&filter).await?;
        Ok(Json(OperationPageView {
            items: page.items.into_iter().map(OperationView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// Get one operation with all its attempts.
    #[oai(path = "/operations/:id", method = "get", operation_id = "operation_get")]
    async fn get(&self, _auth: ViewerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<OperationView>> {
        let id = OperationId(id.0);
        let op = self.state.app.operation(id).await?;
        let attempts = self.state.app.attempts(id).await?;
        let mut view = OperationView::from(op);
        view.attempts = Some(attempts.into_iter().map(AttemptView::from).collect());
        view.warnings = crate::submit::warnings(&self.state.app, &view).await?;
        Ok(Json(view))
    }

    /// Cancel an operation: at once when queued or waiting to retry; when running, at its next safe point.
    #[oai(path = "/operations/:id/cancel", method = "post", operation_id = "operation_cancel")]
    async fn cancel(&self, auth: OperatorAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<OperationView>> {
        let id = OperationId(id.0);
        Ok(Json(self.state.app.cancel(id, &auth.0.name).await?.into()))
    }

    /// Retry a failed or cancelled operation as a new operation linked to it.
    #[oai(path = "/operations/:id/retry", method = "post", operation_id = "operation_retry")]
    async fn retry(&self, auth: OperatorAuth, id: Path<uuid::Uuid>) -> ApiResult<crate::submit::Enqueued> {
        let id = OperationId(id.0);
        let origin = self.state.origin(&auth.0, None)?;
        let op = self.state.app.retry(id, &origin.requested_by, Some(current_request_id())).await?;
        let submitted = hyperfleet_core::store::Submitted { operation: op, replayed: false };
        Ok(crate::submit::Enqueued::answer(&self.state.app, submitted).await?)
    }
}
