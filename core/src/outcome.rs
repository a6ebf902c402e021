//! What the end of an attempt means for its operation: the retry policy as a
//! pure function. The ledger records the decision; it does not make it.

use std::time::Duration;

use serde_json::Value;

use crate::{
    Timestamp,
    backoff::Backoff,
    operation::{AttemptOutcome, ErrorClass, JobFailure, Operation, OperationStatus},
};

/// How an attempt ended, as the job body reports it.
#[derive(Debug, Clone)]
pub enum Finish {
    Succeeded(Value),
    Cancelled(String),
    Failed(JobFailure),
}

/// What recording an attempt's outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the operation is now in this status.
    Status(OperationStatus),
    /// The lease was lost (the reaper took the operation back): nothing was
    /// recorded, and the attempt is the reaper's to close.
    LeaseLost,
}

/// The operation's next state and the attempt's closing row.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: OperationStatus,
    pub attempt: AttemptOutcome,
    pub result: Option<Value>,
    pub error_class: Option<ErrorClass>,
    pub error_code: Option<String>,
    /// The failure's message, or a success's `note` (e.g. "destroyed after the timeout").
    pub message: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
}

impl Outcome {
    /// A transient failure with attempts left is retried after the backoff;
    /// any other failure is final; a cancel is final and has no error class.
    pub fn of(op: &Operation, finish: Finish, backoff: &Backoff, now: Timestamp) -> Self {
        let plain = |status, attempt| Self {
            status,
            attempt,
            result: None,
            error_class: None,
            error_code: None,
            message: None,
            next_attempt_at: None,
        };
        match finish {
            Finish::Succeeded(result) => Self {
                message: result.get("note").and_then(Value::as_str).map(str::to_owned),
                result: Some(result),
                ..plain(OperationStatus::Succeeded, AttemptOutcome::Succeeded)
            },
            Finish::Cancelled(why) => Self {
                error_code: Some("cancelled".into()),
                message: Some(why),
                ..plain(OperationStatus::Cancelled, AttemptOutcome::Cancelled)
            },
            Finish::Failed(f) => {
                let retry = f.class == ErrorClass::Transient && op.attempt_count < op.max_attempts;
                let status = if retry { OperationStatus::Retrying } else { OperationStatus::Failed };
                Self {
                    error_class: Some(f.class),
                    error_code: Some(f.code),
                    message: Some(f.message),
                    next_attempt_at: retry.then(|| now.plus(backoff.delay(op.attempt_count as u32))),
                    ..plain(status, AttemptOutcome::Failed)
                }
            }
        }
    }

    /// A running operation taken from its worker: retried while attempts are
    /// left — at once when its worker handed it back on shutdown, after the
    /// backoff when the worker died — else failed with class `abandoned`.
    pub fn abandoned(
        attempt: i32,
        max_attempts: i32,
        handed_back: bool,
        message: String,
        backoff: &Backoff,
        now: Timestamp,
    ) -> Self {
        let retry = attempt < max_attempts;
        let delay = if handed_back { Duration::ZERO } else { backoff.delay(attempt as u32) };
        Self {
            status: if retry { OperationStatus::Retrying } else { OperationStatus::Failed },
            attempt: AttemptOutcome::Abandoned,
            result: None,
            error_class: Some(ErrorClass::Abandoned),
            error_code: Some(ErrorClass::Abandoned.as_str().to_owned()),
            message: Some(message),
            next_attempt_at: retry.then(|| now.plus(delay)),
        }
    }

    /// The operation failed for good: its alert is raised with the outcome.
    pub fn failed_for_good(&self) -> bool {
        self.status == OperationStatus::Failed
    }

    /// Whether recording this outcome of an operation on `vm` (if any) gives
    /// its queue work to look at: a retry to wait for, or the next operation
    /// on the same VM, runnable once this one ended.
    pub fn wakes_its_queue(&self, vm: Option<&str>) -> bool {
        self.next_attempt_at.is_some() || vm.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::OperationKind;

    #[test]
    fn a_retry_or_a_vm_wakes_the_queue() {
        let backoff = Backoff::default();
        let now = Timestamp::now();
        let retry = Outcome::abandoned(1, 3, true, "handed back".into(), &backoff, now);
        assert!(retry.next_attempt_at.is_some());
        assert!(retry.wakes_its_queue(None), "its retry waits there");
        let last = Outcome::abandoned(3, 3, true, "handed back".into(), &backoff, now);
        assert!(last.next_attempt_at.is_none());
        assert!(!last.wakes_its_queue(None), "nothing waits behind it");
        assert!(last.wakes_its_queue(Some("web")), "the next operation on its VM may run now");
    }

    fn op(attempt_count: i32, max_attempts: i32) -> Operation {
        let now = Timestamp::now();
        Operation {
            id: crate::OperationId::new(),
            kind: OperationKind::Noop,
            host: None,
            vm: None,
            params: serde_json::json!({}),
            status: OperationStatus::Running,
            requested_by: "t".into(),
            request_id: None,
            idempotency_key: None,
            attempt_count,
            max_attempts,
            next_attempt_at: None,
            cancel_requested: false,
            result: None,
            error_class: None,
            error_code: None,
            last_error: None,
            retry_of: None,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            updated_at: now,
            queue: String::new(),
            schedule_id: None,
            cancelled_by: None,
            attempt_started_at: None,
        }
    }

    #[test]
    fn transient_failures_retry_until_the_last_attempt_and_others_fail_at_once() {
        let now = Timestamp::now();
        let backoff = Backoff { base_ms: 1_000, max_ms: 1_000 };
        let transient = || Finish::Failed(JobFailure::new(ErrorClass::Transient, "busy", "libvirt busy"));
        let o = Outcome::of(&op(1, 3), transient(), &backoff, now);
        assert_eq!(o.status, OperationStatus::Retrying);
        assert!(o.next_attempt_at.is_some_and(|t| t > now && t <= now.plus(Duration::from_secs(1))));
        assert_eq!(Outcome::of(&op(3, 3), transient(), &backoff, now).status, OperationStatus::Failed);
        let permanent = Finish::Failed(JobFailure::new(ErrorClass::Permanent, "vm_not_found", "gone"));
        let o = Outcome::of(&op(1, 3), permanent, &backoff, now);
        assert!(o.failed_for_good() && o.next_attempt_at.is_none());
        let o = Outcome::of(&op(1, 3), Finish::Succeeded(serde_json::json!({"note": "n"})), &backoff, now);
        assert_eq!((o.status, o.message.as_deref()), (OperationStatus::Succeeded, Some("n")));
        let o = Outcome::of(&op(1, 3), Finish::Cancelled("asked".into()), &backoff, now);
        assert_eq!((o.status, o.error_class), (OperationStatus::Cancelled, None));
    }

    #[test]
    fn abandoned_work_is_retried_at_once_when_handed_back_and_fails_when_out_of_attempts() {
        let now = Timestamp::now();
        let backoff = Backoff { base_ms: 60_000, max_ms: 60_000 };
        let o = Outcome::abandoned(1, 3, true, "stopping".into(), &backoff, now);
        assert_eq!((o.status, o.next_attempt_at), (OperationStatus::Retrying, Some(now)));
        let o = Outcome::abandoned(3, 3, false, "died".into(), &backoff, now);
        assert_eq!((o.status, o.error_class), (OperationStatus::Failed, Some(ErrorClass::Abandoned)));
    }
}
