//! The operation ledger's vocabulary: kinds, statuses, error classes and the
//! rows users read. An operation is the durable record of one request; each
//! try at it is an [`Attempt`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, OperationId, Timestamp, closed_set::closed_set, vm::VmAction};

closed_set!(
    /// What an operation does.
    OperationKind, "invalid_kind", "an operation kind" {
        VmStart = "vm.start",
        VmShutdown = "vm.shutdown",
        VmReboot = "vm.reboot",
        VmDestroy = "vm.destroy",
        VmSuspend = "vm.suspend",
        VmResume = "vm.resume",
        /// Diagnostic: sleeps and optionally fails its first attempts.
        Noop = "noop",
        /// The health checks of one host.
        HealthRun = "health.run",
        /// Verifies one backup at a level (checksum, image).
        BackupVerify = "backup.verify",
        /// A full backup of one VM (live push backup, or `qemu-img convert` when shut off).
        BackupCreate = "backup.create",
        /// Deletes a VM's backups past their retention (keep options), never its newest verified one.
        BackupPrune = "backup.prune",
        /// Deletes one backup from its host (the row stays, `deleted`, with its history).
        BackupDelete = "backup.delete",
        /// Deletes finished operations, attempts and health runs past their retention.
        LedgerPrune = "ledger.prune",
        /// One notification of an alert to one channel (email or webhook).
        AlertDeliver = "alert.deliver",
    }
);

impl OperationKind {
    pub fn vm_action(self) -> Option<VmAction> {
        Some(match self {
            Self::VmStart => VmAction::Start,
            Self::VmShutdown => VmAction::Shutdown,
            Self::VmReboot => VmAction::Reboot,
            Self::VmDestroy => VmAction::Destroy,
            Self::VmSuspend => VmAction::Suspend,
            Self::VmResume => VmAction::Resume,
            Self::Noop
            | Self::HealthRun
            | Self::BackupVerify
            | Self::BackupCreate
            | Self::BackupPrune
            | Self::BackupDelete
            | Self::LedgerPrune
            | Self::AlertDeliver => return None,
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

closed_set!(
    /// A class of work with slots of its own in every worker, so that a flood
    /// of one class (hour-long diagnostics, say) never delays another.
    WorkClass, "invalid_work_class", "a work class" {
        Vm = "vm",
        Health = "health",
        Alerts = "alerts",
        Backup = "backup",
        Diagnostics = "diagnostics",
        Housekeeping = "housekeeping",
    }
);

impl OperationKind {
    pub fn class(self) -> WorkClass {
        match self {
            Self::VmStart | Self::VmShutdown | Self::VmReboot | Self::VmDestroy | Self::VmSuspend | Self::VmResume => {
                WorkClass::Vm
            }
            Self::HealthRun => WorkClass::Health,
            Self::AlertDeliver => WorkClass::Alerts,
            Self::BackupVerify | Self::BackupCreate | Self::BackupPrune | Self::BackupDelete => WorkClass::Backup,
            Self::Noop => WorkClass::Diagnostics,
            Self::LedgerPrune => WorkClass::Housekeeping,
        }
    }
}

closed_set!(
    /// `queued → running → succeeded | failed | cancelled`, `retrying` between attempts.
    OperationStatus, "invalid_status", "an operation status" {
        Queued = "queued",
        Running = "running",
        Retrying = "retrying",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
);

impl OperationStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

closed_set!(
    /// Why an attempt failed; decides whether the ledger retries.
    ErrorClass, "invalid_error_class", "an error class" {
        /// A peer hiccup (connection lost, libvirt busy): retried with backoff.
        Transient = "transient",
        /// Retrying cannot help (no such VM, invalid state): fails at once.
        Permanent = "permanent",
        /// The action did not complete in its allotted time.
        Timeout = "timeout",
        /// The worker running it disappeared (lease expired) or handed it back.
        Abandoned = "abandoned",
    }
);

closed_set!(
    /// How one attempt ended.
    AttemptOutcome, "invalid_outcome", "an attempt outcome" {
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Abandoned = "abandoned",
    }
);

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
    pub kind: OperationKind,
    pub host: Option<String>,
    pub vm: Option<String>,
    pub params: Value,
    pub status: OperationStatus,
    pub requested_by: String,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Option<Timestamp>,
    pub cancel_requested: bool,
    pub result: Option<Value>,
    pub error_class: Option<ErrorClass>,
    pub error_code: Option<String>,
    pub last_error: Option<String>,
    pub retry_of: Option<OperationId>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// The queue it waits in (its host's, or the shared one).
    #[serde(skip)]
    pub queue: String,
    /// The schedule that fired it.
    pub schedule_id: Option<crate::ScheduleId>,
    /// Who asked to cancel it.
    pub cancelled_by: Option<String>,
    /// When its running attempt started, as its attempt row says: known to
    /// the worker that claimed it (the claim opened that row), `None` for an
    /// operation read from the ledger.
    #[serde(skip)]
    pub attempt_started_at: Option<Timestamp>,
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
    pub outcome: Option<AttemptOutcome>,
    pub error_class: Option<ErrorClass>,
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
    /// A diagnostic holds a slot while it sleeps: a minute at most.
    pub const MAX_SLEEP_MS: u64 = 60_000;

    pub fn validate(&self) -> Result<(), Error> {
        if self.sleep_ms > Self::MAX_SLEEP_MS {
            return Err(Error::invalid("invalid_parameters", format!("`sleep_ms` must be ≤ {}", Self::MAX_SLEEP_MS)));
        }
        Ok(())
    }
}

/// Idempotency keys are scoped to who asked: the same key sent by two tokens
/// names two different requests, and one token never learns of the other's
/// operation. Stored as `<requested_by>` + U+001F + `<key>` (neither part can
/// hold that control character: token names and keys are visible ASCII).
pub fn scoped_idempotency_key(requested_by: &str, key: &str) -> String {
    format!("{requested_by}\u{1f}{key}")
}

/// The key as its sender wrote it (rows of earlier versions were stored unscoped).
pub fn unscoped_idempotency_key(requested_by: &str, stored: String) -> String {
    match stored.strip_prefix(requested_by).and_then(|rest| rest.strip_prefix('\u{1f}')) {
        Some(key) => key.to_owned(),
        None => stored,
    }
}

/// Parameters of kinds that take none.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Checks `params` against `kind`'s typed parameters, as a submit or a
/// schedule sends them: unknown fields and out-of-range values are refused
/// when asked, not when run.
pub fn check_params(kind: OperationKind, params: &Value) -> Result<(), Error> {
    fn parse<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, Error> {
        serde_json::from_value(params.clone()).map_err(|e| Error::invalid("invalid_parameters", e))
    }
    match kind {
        OperationKind::Noop => parse::<NoopParams>(params)?.validate(),
        OperationKind::HealthRun | OperationKind::LedgerPrune => parse::<NoParams>(params).map(drop),
        OperationKind::AlertDeliver => parse::<crate::alert::DeliverParams>(params).map(drop),
        OperationKind::BackupCreate => parse::<crate::backup::CreateParams>(params)?.validate(),
        OperationKind::BackupVerify => parse::<crate::backup::VerifyParams>(params)?.validate(),
        OperationKind::BackupPrune => parse::<crate::backup_prune::PruneParams>(params)?.validate(),
        OperationKind::BackupDelete => parse::<crate::backup::DeleteParams>(params).map(drop),
        vm => match vm.vm_action() {
            Some(action) => parse::<crate::vm::PowerParams>(params)?.validate(action),
            None => Err(Error::invalid("invalid_kind", format!("`{}` takes no parameters here", vm.as_str()))),
        },
    }
}

/// The host fan-out rule: a health run or a backup verification (planning,
/// without a backup) without a host means one run on every host whose worker
/// has not stopped (`live_hosts`); anything else runs where it was asked.
/// Empty when there is nowhere to run.
pub fn fan_out(kind: OperationKind, host: Option<&str>, live_hosts: &[String]) -> Vec<Option<String>> {
    if fans_out(kind, host) { live_hosts.iter().cloned().map(Some).collect() } else { vec![host.map(str::to_owned)] }
}

/// Whether [`fan_out`] needs the live hosts (callers read them only then).
pub fn fans_out(kind: OperationKind, host: Option<&str>) -> bool {
    host.is_none() && matches!(kind, OperationKind::HealthRun | OperationKind::BackupVerify)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn params_are_checked_per_kind() {
        check_params(OperationKind::Noop, &json!({"sleep_ms": 5})).unwrap();
        assert_eq!(check_params(OperationKind::Noop, &json!({"sleep": 5})).unwrap_err().code(), "invalid_parameters");
        check_params(OperationKind::HealthRun, &json!({})).unwrap();
        assert!(check_params(OperationKind::LedgerPrune, &json!({"days": 1})).is_err());
        assert!(check_params(OperationKind::VmShutdown, &json!({"timeout_s": 30})).is_ok());
        check_params(OperationKind::BackupVerify, &json!({})).unwrap();
        let id = crate::BackupId::new();
        check_params(OperationKind::BackupVerify, &json!({"backup_id": id, "level": "image"})).unwrap();
        check_params(OperationKind::BackupVerify, &json!({"level": "boot", "boot_timeout_s": 60})).unwrap();
        assert!(check_params(OperationKind::BackupVerify, &json!({"backup_id": id, "level": "reboot"})).is_err());
        let bad_marker = json!({"level": "boot", "boot_marker": "("});
        assert_eq!(check_params(OperationKind::BackupVerify, &bad_marker).unwrap_err().code(), "invalid_boot_marker");
        check_params(OperationKind::BackupCreate, &json!({"vm": "web"})).unwrap();
        assert!(check_params(OperationKind::BackupCreate, &json!({"vm": "../etc"})).is_err());
    }

    #[test]
    fn health_runs_without_a_host_fan_out_over_live_hosts() {
        let live = ["hv1".to_owned(), "hv2".to_owned()];
        let all = fan_out(OperationKind::HealthRun, None, &live);
        assert_eq!(all, [Some("hv1".to_owned()), Some("hv2".to_owned())]);
        assert_eq!(fan_out(OperationKind::HealthRun, Some("hv2"), &live), [Some("hv2".to_owned())]);
        assert_eq!(fan_out(OperationKind::Noop, None, &live), [None]);
        assert_eq!(fan_out(OperationKind::BackupVerify, None, &live).len(), 2);
        assert!(fan_out(OperationKind::HealthRun, None, &[]).is_empty());
        assert!(fans_out(OperationKind::HealthRun, None) && !fans_out(OperationKind::Noop, None));
    }
}
