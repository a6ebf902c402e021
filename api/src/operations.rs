//! `/api/v1/operations`: the ledger, read and steered.

use hyperfleet_core::{
    Error, OperationId, Timestamp,
    operation::{OperationKind, OperationStatus},
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

pub(crate) fn parse_time(name: &str, text: Option<String>) -> Result<Option<Timestamp>, Error> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(&t).map(|d| Timestamp(d.with_timezone(&chrono::Utc))).map_err(|_| {
            Error::invalid("invalid_timestamp", format!("`{name}` must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"))
        })
    })
    .transpose()
}

/// A list's `limit`: 1-500, default 50.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, Error> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("invalid_limit", "`limit` must be 1-500"));
    }
    Ok(limit)
}

/// A list's `cursor`: an id this API returned as `next_cursor`.
pub(crate) fn parse_cursor<T>(cursor: Option<String>, parse: fn(&str) -> Result<T, Error>) -> Result<Option<T>, Error> {
    cursor
        .as_deref()
        .map(|c| parse(c).map_err(|_| Error::invalid("invalid_cursor", "`cursor` is not a cursor this API returned")))
        .transpose()
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
        vm: Query<Option<String>>,
        /// Only operations on this host.
        host: Query<Option<String>>,
        /// Created at or after this time (RFC 3339).
        since: Query<Option<String>>,
        /// Created before this time (RFC 3339).
        until: Query<Option<String>>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<OperationPageView>> {
        let limit = page_limit(limit.0)?;
        let filter = OperationFilter {
            status: status.0,
            kind: kind.0,
            host: host.0,
            vm: vm.0,
            since: parse_time("since", since.0)?,
            until: parse_time("until", until.0)?,
            cursor: parse_cursor(cursor.0, OperationId::parse)?,
            limit,
        };
        let page = self.state.store.list_operations(&filter).await?;
        Ok(Json(OperationPageView {
            items: page.items.into_iter().map(OperationView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }))
    }

    /// Get one operation with all its attempts.
    #[oai(path = "/operations/:id", method = "get", operation_id = "operation_get")]
    async fn get(&self, _auth: ViewerAuth, id: Path<String>) -> ApiResult<Json<OperationView>> {
        let id = OperationId::parse(&id)?;
        let op = self.state.store.operation(id).await?;
        let attempts = self.state.store.attempts(id).await?;
        let mut view = OperationView::from(op);
        view.attempts = Some(attempts.into_iter().map(AttemptView::from).collect());
        view.warnings = crate::submit::warnings(&self.state.store, &view).await?;
        Ok(Json(view))
    }

    /// Cancel an operation: at once when queued or waiting to retry; when running, at its next safe point.
    #[oai(path = "/operations/:id/cancel", method = "post", operation_id = "operation_cancel")]
    async fn cancel(&self, _auth: OperatorAuth, id: Path<String>) -> ApiResult<Json<OperationView>> {
        let id = OperationId::parse(&id)?;
        Ok(Json(self.state.store.cancel(id).await?.into()))
    }

    /// Retry a failed or cancelled operation as a new operation linked to it.
    #[oai(path = "/operations/:id/retry", method = "post", operation_id = "operation_retry")]
    async fn retry(&self, auth: OperatorAuth, id: Path<String>) -> ApiResult<crate::submit::Enqueued> {
        let id = OperationId::parse(&id)?;
        let origin = self.state.origin(&auth.0, None)?;
        let op = self.state.store.retry(id, &origin.requested_by, Some(current_request_id())).await?;
        let submitted = hyperfleet_core::store::Submitted { operation: op, replayed: false };
        Ok(crate::submit::Enqueued::answer(&self.state.store, submitted).await?)
    }
}
