//! What the API sends: OpenAPI objects mapped from the domain types. Optional
//! fields are left out when absent, never sent as an undeclared `null`.

use chrono::{DateTime, Utc};
use hyperfleet_core::{
    operation::{Attempt, AttemptOutcome, ErrorClass, Operation, OperationKind, OperationStatus},
    store::VmRecord,
    vm::VmState,
};
use poem_openapi::Object;

#[derive(Debug, Clone, Object)]
pub struct OperationView {
    pub id: uuid::Uuid,
    pub kind: OperationKind,
    #[oai(skip_serializing_if_is_none)]
    pub host: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub vm: Option<String>,
    pub params: serde_json::Value,
    pub status: OperationStatus,
    /// Who asked: a token name or a schedule.
    pub requested_by: String,
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub idempotency_key: Option<String>,
    pub attempt_count: i32,
    pub max_attempts: i32,
    /// When the next attempt is due (status `retrying`).
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    #[oai(skip_serializing_if_is_none)]
    pub result: Option<serde_json::Value>,
    #[oai(skip_serializing_if_is_none)]
    pub error_class: Option<ErrorClass>,
    #[oai(skip_serializing_if_is_none)]
    pub error_code: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    /// The operation this one retries.
    #[oai(skip_serializing_if_is_none)]
    pub retry_of: Option<uuid::Uuid>,
    /// The schedule that fired it.
    #[oai(skip_serializing_if_is_none)]
    pub schedule_id: Option<uuid::Uuid>,
    /// The token that asked to cancel it.
    #[oai(skip_serializing_if_is_none)]
    pub cancelled_by: Option<String>,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub started_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Every attempt, oldest first (on `operation_get` only).
    #[oai(skip_serializing_if_is_none)]
    pub attempts: Option<Vec<AttemptView>>,
    /// Why a waiting operation may not move, e.g. its host is offline.
    #[oai(skip_serializing_if_is_none)]
    pub warnings: Option<Vec<String>>,
}

impl From<Operation> for OperationView {
    fn from(o: Operation) -> Self {
        Self {
            id: o.id.0,
            kind: o.kind,
            host: o.host,
            vm: o.vm,
            params: o.params,
            status: o.status,
            requested_by: o.requested_by,
            request_id: o.request_id,
            idempotency_key: o.idempotency_key,
            attempt_count: o.attempt_count,
            max_attempts: o.max_attempts,
            // A running operation keeps the due time of the attempt it runs
            // (for its queue wait); clients see it only while one is pending.
            next_attempt_at: (o.status == OperationStatus::Retrying)
                .then_some(o.next_attempt_at)
                .flatten()
                .map(|t| t.0),
            cancel_requested: o.cancel_requested,
            result: o.result,
            error_class: o.error_class,
            error_code: o.error_code,
            last_error: o.last_error,
            retry_of: o.retry_of.map(|i| i.0),
            schedule_id: o.schedule_id.map(|i| i.0),
            cancelled_by: o.cancelled_by,
            created_at: o.created_at.0,
            started_at: o.started_at.map(|t| t.0),
            finished_at: o.finished_at.map(|t| t.0),
            updated_at: o.updated_at.0,
            attempts: None,
            warnings: None,
        }
    }
}

/// One try at an operation.
#[derive(Debug, Clone, Object)]
pub struct AttemptView {
    pub attempt: i32,
    /// The worker process that ran it.
    pub worker: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
    // Absent while running. (No doc comment: it would wrap the enum's `$ref`.)
    #[oai(skip_serializing_if_is_none)]
    pub outcome: Option<AttemptOutcome>,
    #[oai(skip_serializing_if_is_none)]
    pub error_class: Option<ErrorClass>,
    #[oai(skip_serializing_if_is_none)]
    pub error_code: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub message: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        Self {
            attempt: a.attempt,
            worker: a.worker,
            host: a.host,
            started_at: a.started_at.0,
            finished_at: a.finished_at.map(|t| t.0),
            outcome: a.outcome,
            error_class: a.error_class,
            error_code: a.error_code,
            message: a.message,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct OperationPageView {
    pub items: Vec<OperationView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A VM as its host's worker last saw it.
#[derive(Debug, Clone, Object)]
pub struct VmView {
    pub name: String,
    pub host: String,
    pub uuid: String,
    pub state: VmState,
    /// libvirt's reason for the state (`booted`, `user`, `destroyed`, …).
    pub state_reason: String,
    pub vcpus: i32,
    pub memory_kib: i64,
    pub autostart: bool,
    pub persistent: bool,
    /// When the inventory last saw it.
    pub updated_at: DateTime<Utc>,
}

impl From<VmRecord> for VmView {
    fn from(v: VmRecord) -> Self {
        Self {
            name: v.name,
            host: v.host,
            uuid: v.uuid,
            state: v.state,
            state_reason: v.state_reason,
            vcpus: v.vcpus,
            memory_kib: v.memory_kib,
            autostart: v.autostart,
            persistent: v.persistent,
            updated_at: v.updated_at.0,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct VmListView {
    pub items: Vec<VmView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}
