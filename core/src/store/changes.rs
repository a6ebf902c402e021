//! The ledger's change feed: which operations changed since an instant. One
//! reader per API process (the dashboard's live updates) polls it by the
//! `operations_updated` index; pages then read the changed rows back by id.

use sqlx::AssertSqlSafe;

use super::{
    Store, read_db,
    rows::{OPERATION_COLUMNS, OperationRow},
};
use crate::{
    OperationId, Result, Timestamp,
    operation::{Operation, OperationStatus},
    store::OperationFilter,
};

/// An operation as of its last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Change {
    pub id: OperationId,
    pub status: OperationStatus,
    pub updated_at: Timestamp,
}

impl Store {
    /// Operations whose row changed at or after `since`, oldest change first, at most `limit`.
    pub async fn operations_changed_since(&self, since: Timestamp, limit: u32) -> Result<Vec<Change>> {
        let sql = "SELECT id, status, updated_at FROM operations WHERE updated_at >= $1 \
                   ORDER BY updated_at, id LIMIT $2";
        let rows = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, Change>(sql).bind(since).bind(i64::from(limit)).fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// The operations among `ids` that exist, newest first: the rows a live page re-renders.
    pub async fn operations_by_ids(&self, ids: &[OperationId]) -> Result<Vec<Operation>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id IN ({marks}) ORDER BY id DESC");
        let rows: Vec<OperationRow> = read_db!(self, |pool, Db| {
            let mut q = sqlx::query_as::<Db, OperationRow>(AssertSqlSafe(sql.as_str()));
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

impl OperationFilter {
    /// Whether `op` is one of the rows this filter lists (ignoring the cursor
    /// and the limit): what a live page asks of a changed operation.
    pub fn matches(&self, op: &Operation) -> bool {
        self.status.is_none_or(|s| s == op.status)
            && self.kind.is_none_or(|k| k == op.kind)
            && self.host.as_ref().is_none_or(|h| op.host.as_ref() == Some(h))
            && self.vm.as_ref().is_none_or(|v| op.vm.as_ref() == Some(v))
            && self.since.is_none_or(|t| op.created_at >= t)
            && self.until.is_none_or(|t| op.created_at < t)
            && self.error_class.is_none_or(|c| op.error_class == Some(c))
            && self.requested_by.as_ref().is_none_or(|r| &op.requested_by == r)
            && self.error_text.as_ref().is_none_or(|t| {
                op.last_error.as_ref().is_some_and(|e| e.to_ascii_lowercase().contains(&t.to_ascii_lowercase()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::OperationKind;

    fn op(status: OperationStatus, host: Option<&str>, vm: Option<&str>) -> Operation {
        Operation {
            id: OperationId::default(),
            kind: OperationKind::Noop,
            host: host.map(Into::into),
            vm: vm.map(Into::into),
            params: serde_json::json!({}),
            status,
            requested_by: "t".into(),
            request_id: None,
            idempotency_key: None,
            attempt_count: 0,
            max_attempts: 1,
            next_attempt_at: None,
            cancel_requested: false,
            result: None,
            error_class: None,
            error_code: None,
            last_error: None,
            retry_of: None,
            created_at: Timestamp::now(),
            started_at: None,
            finished_at: None,
            updated_at: Timestamp::now(),
            queue: "q".into(),
            schedule_id: None,
            cancelled_by: None,
            attempt_started_at: None,
        }
    }

    #[test]
    fn a_filter_matches_what_its_query_would_list() {
        let any = OperationFilter::default();
        let queued = op(OperationStatus::Queued, Some("hv1"), Some("web"));
        assert!(any.matches(&queued));
        let failed = OperationFilter { status: Some(OperationStatus::Failed), ..Default::default() };
        assert!(!failed.matches(&queued));
        let on_hv2 = OperationFilter { host: Some("hv2".into()), ..Default::default() };
        assert!(!on_hv2.matches(&queued));
        let web = OperationFilter { vm: Some("web".into()), kind: Some(queued.kind), ..Default::default() };
        assert!(web.matches(&queued));
        assert!(!web.matches(&op(OperationStatus::Queued, Some("hv1"), None)));
        let other_kind = OperationKind::ALL.iter().find(|k| **k != queued.kind).copied();
        assert!(!OperationFilter { kind: other_kind, ..Default::default() }.matches(&queued));
    }

    #[test]
    fn error_filters_match_the_class_the_requester_and_the_text_case_ignored() {
        let mut failed = op(OperationStatus::Failed, Some("hv1"), Some("web"));
        failed.error_class = Some(crate::operation::ErrorClass::Timeout);
        failed.last_error = Some("Guest did not shut down in 5 s".into());
        let timeout = OperationFilter { error_class: failed.error_class, ..Default::default() };
        assert!(timeout.matches(&failed));
        assert!(!timeout.matches(&op(OperationStatus::Failed, Some("hv1"), Some("web"))));
        let text = |t: &str| OperationFilter { error_text: Some(t.into()), ..Default::default() };
        assert!(text("did NOT shut").matches(&failed));
        assert!(!text("reboot").matches(&failed));
        let by = |r: &str| OperationFilter { requested_by: Some(r.into()), ..Default::default() };
        assert!(by("t").matches(&failed) && !by("admin").matches(&failed));
    }
}
