//! The operation ledger's vocabulary: kinds, statuses, error classes and the
//! rows users read. An operation is the durable record of one request; each
//! try at it is an [`Attempt`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, OperationId, Timestamp, vm::VmAction};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationKind {
    #[serde(rename = "vm.start")]
    VmStart,
    #[serde(rename = "vm.shutdown")]
    VmShutdown,
    #[serde(rename = "vm.reboot")]
    VmReboot,
    #[serde(rename = "vm.destroy")]
    VmDestroy,
    #[serde(rename = "vm.suspend")]
    VmSuspend,
    #[serde(rename = "vm.resume")]
    VmResume,
    /// Diagnostic: sleeps and optionally fails its first attempts.
    #[serde(rename = "noop")]
    Noop,
    /// The health checks of one host.
    #[serde(rename = "health.run")]
    HealthRun,
    /// Backup verification (not implemented yet: fails with `not_implemented`).
    #[serde(rename = "backup.verify")]
    BackupVerify,
    /// Deletes finished operations, attempts and health runs past their retention.
    #[serde(rename = "ledger.prune")]
    LedgerPrune,
    /// One notification of an alert to one channel (email or webhook).
    #[serde(rename = "alert.deliver")]
    AlertDeliver,
}

impl OperationKind {
    pub const ALL: [OperationKind; 11] = [
        Self::VmStart,
        Self::VmShutdown,
        Self::VmReboot,
        Self::VmDestroy,
        Self::VmSuspend,
        Self::VmResume,
        Self::Noop,
        Self::HealthRun,
        Self::BackupVerify,
        Self::LedgerPrune,
        Self::AlertDeliver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VmStart => "vm.start",
            Self::VmShutdown => "vm.shutdown",
            Self::VmReboot => "vm.reboot",
            Self::VmDestroy => "vm.destroy",
            Self::VmSuspend => "vm.suspend",
            Self::VmResume => "vm.resume",
            Self::Noop => "noop",
            Self::HealthRun => "health.run",
            Self::BackupVerify => "backup.verify",
            Self::LedgerPrune => "ledger.prune",
            Self::AlertDeliver => "alert.deliver",
        }
    }

    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| Error::invalid("invalid_kind", format!("`{text}` is not an operation kind")))
    }

    pub fn vm_action(self) -> Option<VmAction> {
        Some(match self {
            Self::VmStart => VmAction::Start,
            Self::VmShutdown => VmAction::Shutdown,
            Self::VmReboot => VmAction::Reboot,
            Self::VmDestroy => VmAction::Destroy,
            Self::VmSuspend => VmAction::Suspend,
            Self::VmResume => VmAction::Resume,
            Self::Noop | Self::HealthRun | Self::BackupVerify | Self::LedgerPrune | Self::AlertDeliver => return None,
        })
    }

    pub fn for_vm_action(action: VmAction) -> Self {
        match action {
            VmAction::Start => Self::VmStart,
            VmAction::Shutdown => Self::VmShutdown,
            VmAction::Reboot => Self::VmReboot,
            VmAction::Destroy => Self::VmDestroy,
            VmAction::Suspend => Self::VmSuspend,
            VmAction::Resume => Self::VmResume,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Queued,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
}

impl OperationStatus {
    pub const ALL: [OperationStatus; 6] =
        [Self::Queued, Self::Running, Self::Retrying, Self::Succeeded, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| Error::invalid("invalid_status", format!("`{text}` is not an operation status")))
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Why an attempt failed; decides whether the ledger retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// A peer hiccup (connection lost, libvirt busy): retried with backoff.
    Transient,
    /// Retrying cannot help (no such VM, invalid state): fails at once.
    Permanent,
    /// The action did not complete in its allotted time.
    Timeout,
    /// The worker running it disappeared (lease expired) or handed it back.
    Abandoned,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Timeout => "timeout",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Transient, Self::Permanent, Self::Timeout, Self::Abandoned].into_iter().find(|c| c.as_str() == text)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
    Cancelled,
    Abandoned,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }
}

/// The failure a job body reports for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub class: ErrorClass,
    /// Stable code, e.g. `vm_not_found`, `invalid_vm_state`, `libvirt_unavailable`.
    pub code: String,
    pub message: String,
}

impl JobFailure {
    pub fn new(class: ErrorClass, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { class, code: code.into(), message: message.into() }
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.class.as_str(), self.message)
    }
}

/// A row of `operations`, as users read it.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub id: OperationId,
    pub kind: String,
    pub host: Option<String>,
    pub vm: Option<String>,
    pub params: Value,
    pub status: String,
    pub requested_by: String,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Option<Timestamp>,
    pub cancel_requested: bool,
    pub result: Option<Value>,
    pub error_class: Option<String>,
    pub error_code: Option<String>,
    pub last_error: Option<String>,
    pub retry_of: Option<OperationId>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// The apalis queue that carries its wake-ups.
    #[serde(skip)]
    pub queue: String,
    /// The schedule that fired it.
    pub schedule_id: Option<crate::ScheduleId>,
}

impl Operation {
    pub fn status(&self) -> OperationStatus {
        OperationStatus::parse(&self.status).unwrap_or(OperationStatus::Failed)
    }

    pub fn kind(&self) -> Result<OperationKind, Error> {
        OperationKind::parse(&self.kind)
    }
}

/// A row of `operation_attempts`: one try at an operation.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub operation_id: OperationId,
    pub attempt: i32,
    pub worker: String,
    pub host: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: Option<String>,
    pub error_class: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
}

/// What a caller asks the ledger to record and run.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub kind: OperationKind,
    pub host: Option<String>,
    pub vm: Option<String>,
    pub params: Value,
    pub requested_by: String,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub max_attempts: i32,
}

impl NewOperation {
    pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;

    /// A fingerprint of what was asked, to tell a replay from a different
    /// request under the same idempotency key.
    pub fn request_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::json!([self.kind.as_str(), self.host, self.vm, self.params]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Parameters of the diagnostic `noop` operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopParams {
    #[serde(default)]
    pub sleep_ms: u64,
    /// The first `fail_times` attempts fail with a transient error.
    #[serde(default)]
    pub fail_times: u32,
}

impl NoopParams {
    pub const MAX_SLEEP_MS: u64 = 3_600_000;

    pub fn validate(&self) -> Result<(), Error> {
        if self.sleep_ms > Self::MAX_SLEEP_MS {
            return Err(Error::invalid("invalid_parameters", format!("`sleep_ms` must be ≤ {}", Self::MAX_SLEEP_MS)));
        }
        Ok(())
    }
}
