//! Row shapes shared by both backends, and their conversion to domain types.

use serde_json::Value;
use sqlx::types::Json;

use crate::{
    OperationId, ScheduleId, Timestamp,
    operation::{Attempt, AttemptOutcome, ErrorClass, Operation, OperationKind, OperationStatus},
};

pub(crate) const OPERATION_COLUMNS: &str = "id, kind, host, vm, params, status, requested_by, request_id, \
    idempotency_key, request_hash, attempt_count, max_attempts, next_attempt_at, cancel_requested, result, \
    error_class, error_code, last_error, retry_of, created_at, started_at, finished_at, updated_at, queue, schedule_id, \
    cancelled_by";

pub(crate) const ATTEMPT_COLUMNS: &str =
    "operation_id, attempt, worker, host, started_at, finished_at, outcome, error_class, error_code, message";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OperationRow {
    pub id: OperationId,
    pub kind: OperationKind,
    pub host: Option<String>,
    pub vm: Option<String>,
    pub params: Json<Value>,
    pub status: OperationStatus,
    pub requested_by: String,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Option<Timestamp>,
    pub cancel_requested: bool,
    pub result: Option<Json<Value>>,
    pub error_class: Option<ErrorClass>,
    pub error_code: Option<String>,
    pub last_error: Option<String>,
    pub retry_of: Option<OperationId>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub queue: String,
    pub schedule_id: Option<ScheduleId>,
    pub cancelled_by: Option<String>,
}

impl From<OperationRow> for Operation {
    fn from(r: OperationRow) -> Self {
        Operation {
            id: r.id,
            kind: r.kind,
            host: r.host,
            vm: r.vm,
            params: r.params.0,
            status: r.status,
            idempotency_key: r.idempotency_key.map(|k| crate::operation::unscoped_idempotency_key(&r.requested_by, k)),
            requested_by: r.requested_by,
            request_id: r.request_id,
            attempt_count: r.attempt_count,
            max_attempts: r.max_attempts,
            next_attempt_at: r.next_attempt_at,
            cancel_requested: r.cancel_requested,
            result: r.result.map(|j| j.0),
            error_class: r.error_class,
            error_code: r.error_code,
            last_error: r.last_error,
            retry_of: r.retry_of,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            updated_at: r.updated_at,
            queue: r.queue,
            schedule_id: r.schedule_id,
            cancelled_by: r.cancelled_by,
            attempt_started_at: None,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub operation_id: OperationId,
    pub attempt: i32,
    pub worker: String,
    pub host: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: Option<AttemptOutcome>,
    pub error_class: Option<ErrorClass>,
    pub error_code: Option<String>,
    pub message: Option<String>,
}

impl From<AttemptRow> for Attempt {
    fn from(r: AttemptRow) -> Self {
        Attempt {
            operation_id: r.operation_id,
            attempt: r.attempt,
            worker: r.worker,
            host: r.host,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            error_class: r.error_class,
            error_code: r.error_code,
            message: r.message,
        }
    }
}
