//! Cancel or retry many operations at once (the dashboard's bulk actions).
//! Each one goes through the same use case as a single action, so each is
//! checked and attributed (`cancelled_by`, `requested_by`) exactly as if it
//! had been asked for alone; one that cannot be (already finished, say) is
//! reported and does not stop the others.

use super::App;
use crate::{Error, OperationId, Result};

/// The most operations one bulk action touches: "all matching the filter"
/// takes at most this many, newest first.
pub const BULK_CAP: usize = 200;

crate::closed_set::closed_set! {
    /// What a bulk action does to each operation.
    BulkAction, "invalid_bulk_action", "a bulk action" {
        Cancel = "cancel",
        Retry = "retry",
    }
}

/// What a bulk action did, operation by operation.
#[derive(Debug, Default)]
pub struct BulkReport {
    /// `(asked, result)`: the operation cancelled, or the new operation retrying it.
    pub done: Vec<(OperationId, OperationId)>,
    /// Operations the action did not apply to, and why.
    pub refused: Vec<(OperationId, Error)>,
}

impl App {
    /// Applies `action` to each of `ids` as `by` would one at a time. Fails
    /// as a whole only on bad input (more than [`BULK_CAP`]) or when the
    /// database fails; a refusal for one operation is reported in its place.
    #[tracing::instrument(skip(self, ids), fields(n = ids.len()))]
    pub async fn bulk(
        &self,
        action: BulkAction,
        ids: &[OperationId],
        by: &str,
        request_id: Option<String>,
    ) -> Result<BulkReport> {
        if ids.len() > BULK_CAP {
            return Err(Error::invalid(
                "too_many_operations",
                format!("a bulk action takes at most {BULK_CAP} operations, not {}", ids.len()),
            ));
        }
        let mut report = BulkReport::default();
        for &id in ids {
            let result = match action {
                BulkAction::Cancel => self.store.cancel(id, by).await,
                BulkAction::Retry => self.store.retry(id, by, request_id.clone()).await,
            };
            match result {
                Ok(op) => report.done.push((id, op.id)),
                Err(e @ (Error::NotFound { .. } | Error::Conflict { .. } | Error::InvalidInput { .. })) => {
                    report.refused.push((id, e));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}
