//! Alert sources as pure functions: which alert a fact raises or resolves.
//! The application layer writes the decision in the transaction that records
//! the fact (an operation failing for good, a health run); the fleet monitor
//! writes its decisions in one transaction per look. Nothing here touches the
//! database, so each source is tested on values alone.

use std::time::Duration;

use super::{AlertSource, DeliverParams, NewAlert, Severity};
use crate::{
    NotificationId, OperationId, Timestamp,
    health::{Measurement, Status},
    operation::OperationKind,
};

/// What a source decided about one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    /// One more occurrence (a new alert if none fires under its dedup key).
    Raise(NewAlert),
    /// The condition is over: resolve the firing alert with this key, if any.
    Resolve { dedup_key: String, message: String },
}

/// An operation that just failed for good.
#[derive(Debug, Clone, Copy)]
pub struct FailedOperation<'a> {
    pub id: OperationId,
    pub kind: OperationKind,
    pub host: Option<&'a str>,
    pub vm: Option<&'a str>,
    pub params: &'a serde_json::Value,
    /// The last attempt's error code and message.
    pub code: &'a str,
    pub message: &'a str,
}

/// What an operation failing for good implies.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureAlert {
    pub alert: NewAlert,
    /// A delivery that failed: its notification is marked failed with this detail.
    pub failed_notification: Option<(NotificationId, String)>,
}

/// A failed delivery raises `delivery failed` (critical) for the other
/// channels; any other kind raises `operation failed` (warning), one alert per
/// host, kind and VM, linked to the operation.
pub fn failed_operation(failed: &FailedOperation<'_>) -> Option<FailureAlert> {
    let (code, message) = (failed.code, failed.message);
    if failed.kind == OperationKind::AlertDeliver {
        // Unreadable params cannot name a channel; the operation's own record says what failed.
        let params = serde_json::from_value::<DeliverParams>(failed.params.clone()).ok()?;
        let channel = params.channel;
        let mut alert = NewAlert::system(
            AlertSource::Fleet,
            Severity::Critical,
            format!("Alert delivery failed on channel {channel}"),
            format!(
                "A {} notification could not be delivered through channel {channel} after every attempt: {code}: {message}",
                params.event.as_str(),
            ),
        )
        .label("channel", channel.clone())
        .dedup(format!("fleet:delivery-failed:{channel}"));
        alert.exclude_channel = Some(channel);
        let failed_notification = Some((params.notification_id, format!("{code}: {message}")));
        return Some(FailureAlert { alert, failed_notification });
    }
    let kind = failed.kind.as_str();
    let target = failed.vm.map(|vm| format!(" on VM {vm}")).unwrap_or_default();
    let mut alert = NewAlert::system(
        AlertSource::Operation,
        Severity::Warning,
        format!("Operation {kind}{target} failed"),
        format!("Operation {} ({kind}) failed for good: {code}: {message}", failed.id),
    )
    .on_host(failed.host)
    .label("kind", kind)
    .dedup(format!("operation:{}:{kind}:{}", failed.host.unwrap_or("-"), failed.vm.unwrap_or("-")));
    if let Some(vm) = failed.vm {
        alert = alert.label("vm", vm);
    }
    alert.operation_id = Some(failed.id);
    Some(FailureAlert { alert, failed_notification: None })
}

/// A check that is `warn` or `error` after hysteresis fires (again, on every
/// run, so that repeats follow the notification policy); one that has just
/// come back to `ok` resolves; one that stays `ok` says nothing.
pub fn health_check(host: &str, m: &Measurement, status: Status, changed: bool) -> Option<AlertChange> {
    let dedup_key = format!("health:{host}:{}", m.check);
    let severity = match status {
        Status::Ok if changed => return Some(AlertChange::Resolve { dedup_key, message: m.message.clone() }),
        Status::Ok => return None,
        Status::Warn => Severity::Warning,
        Status::Error => Severity::Critical,
    };
    let title = format!("Health check {} is {} on {host}", m.check, status.as_str());
    let alert = NewAlert::system(AlertSource::Health, severity, title, m.message.clone())
        .on_host(Some(host))
        .label("check", m.check.clone())
        .dedup(dedup_key);
    Some(AlertChange::Raise(alert))
}

/// A verification of one backup that just ran.
#[derive(Debug, Clone, Copy)]
pub struct BackupVerified<'a> {
    pub host: &'a str,
    pub vm: &'a str,
    pub backup: crate::BackupId,
    pub report: &'a crate::backup::VerifyReport,
    /// The backup is the VM's newest complete one.
    pub newest: bool,
}

/// A failed verification raises `backup` (critical), one alert per VM; an ok
/// verification of the VM's newest backup resolves it (an ok one of an older
/// backup says nothing: the newest may still be bad).
pub fn backup_verified(v: &BackupVerified<'_>) -> Option<AlertChange> {
    use crate::backup::VerifyResult;
    let dedup_key = format!("backup:{}:{}", v.host, v.vm);
    match v.report.result {
        VerifyResult::Ok if v.newest => Some(AlertChange::Resolve {
            dedup_key,
            message: format!("backup {} verified ok at level {}", v.backup, v.report.level),
        }),
        VerifyResult::Ok => None,
        VerifyResult::Failed => {
            let what = v.report.findings.iter().map(finding_text).collect::<Vec<_>>().join("; ");
            let alert = NewAlert::system(
                AlertSource::Backup,
                Severity::Critical,
                format!("Backup verification failed for VM {} on {}", v.vm, v.host),
                format!("Backup {} of VM {} failed verification at level {}: {what}", v.backup, v.vm, v.report.level),
            )
            .on_host(Some(v.host))
            .label("vm", v.vm)
            .label("code", v.report.code().unwrap_or("failed"))
            .dedup(dedup_key);
            Some(AlertChange::Raise(alert))
        }
    }
}

fn finding_text(f: &crate::backup::Finding) -> String {
    match &f.file {
        Some(file) => format!("{} in {file}: {}", f.code, f.message),
        None => format!("{}: {}", f.code, f.message),
    }
}

/// A host's worker as the fleet monitor sees it.
#[derive(Debug, Clone)]
pub struct WorkerBeat {
    pub host: String,
    pub last_heartbeat: Timestamp,
    pub heartbeat_s: i32,
    /// Stopped cleanly (not lost).
    pub stopped: bool,
    pub online: bool,
}

/// What the fleet monitor looks at, at one instant.
#[derive(Debug, Clone)]
pub struct FleetFacts<'a> {
    pub workers: &'a [WorkerBeat],
    /// Per queue, since when its oldest runnable work waits.
    pub runnable: &'a [(String, Timestamp)],
    /// Dedup keys of the fleet alerts firing now.
    pub firing: &'a [String],
    pub backlog_threshold: Duration,
    pub now: Timestamp,
}

/// The fleet's facts, each owned here alone: `worker offline` (critical) for
/// a host whose worker stopped beating without stopping cleanly, resolved
/// when it beats again or stops; `backlog` (warning) for a queue whose oldest
/// runnable work is older than the threshold, resolved when it clears. Only
/// firing alerts are resolved, so a quiet fleet writes nothing.
pub fn fleet(facts: &FleetFacts<'_>) -> Vec<AlertChange> {
    let mut out = Vec::new();
    let firing = |key: &str| facts.firing.iter().any(|k| k == key);
    for w in facts.workers {
        let dedup_key = format!("fleet:{}:worker-offline", w.host);
        if !w.stopped && !w.online {
            let alert = NewAlert::system(
                AlertSource::Fleet,
                Severity::Critical,
                format!("Worker offline on {}", w.host),
                format!(
                    "The worker of host {} has not sent a heartbeat since {} (every {} s expected); \
                     operations for this host wait.",
                    w.host, w.last_heartbeat, w.heartbeat_s
                ),
            )
            .on_host(Some(&w.host))
            .dedup(dedup_key);
            out.push(AlertChange::Raise(alert));
        } else if firing(&dedup_key) {
            let message = if w.stopped { "the worker stopped cleanly" } else { "the worker is back" };
            out.push(AlertChange::Resolve { dedup_key, message: message.into() });
        }
    }
    let threshold = facts.backlog_threshold;
    let late = |since: Timestamp| since.plus(threshold) <= facts.now;
    for (queue, since) in facts.runnable.iter().filter(|(_, since)| late(*since)) {
        let age_s = facts.now.millis_since(*since) / 1000.0;
        let alert = NewAlert::system(
            AlertSource::Fleet,
            Severity::Warning,
            format!("Backlog on {queue}"),
            format!("Runnable work on queue {queue} has waited {age_s:.0} s (threshold {} s).", threshold.as_secs()),
        )
        .label("queue", queue.clone())
        .dedup(format!("fleet:backlog:{queue}"));
        out.push(AlertChange::Raise(alert));
    }
    for key in facts.firing.iter().filter(|k| k.starts_with("fleet:backlog:")) {
        let still = facts.runnable.iter().any(|(q, since)| *key == format!("fleet:backlog:{q}") && late(*since));
        if !still {
            out.push(AlertChange::Resolve { dedup_key: key.clone(), message: "the backlog cleared".into() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::alert::NotifyEvent;

    fn failed<'a>(kind: OperationKind, params: &'a serde_json::Value) -> FailedOperation<'a> {
        FailedOperation {
            id: OperationId::new(),
            kind,
            host: Some("hv1"),
            vm: Some("web"),
            params,
            code: "vm_not_found",
            message: "gone",
        }
    }

    #[test]
    fn a_failed_operation_warns_once_per_host_kind_and_vm() {
        let params = json!({});
        let f = failed(OperationKind::VmStart, &params);
        let out = failed_operation(&f).unwrap();
        assert_eq!(out.alert.severity, Severity::Warning);
        assert_eq!(out.alert.effective_dedup_key(), "operation:hv1:vm.start:web");
        assert_eq!(out.alert.operation_id, Some(f.id));
        assert_eq!(out.alert.labels.get("vm").map(String::as_str), Some("web"));
        assert!(out.failed_notification.is_none());
    }

    #[test]
    fn a_failed_delivery_is_critical_and_skips_its_own_channel() {
        let n = NotificationId::new();
        let params = serde_json::to_value(DeliverParams {
            notification_id: n,
            channel: "ops".into(),
            event: NotifyEvent::Firing,
        })
        .unwrap();
        let out = failed_operation(&failed(OperationKind::AlertDeliver, &params)).unwrap();
        assert_eq!(out.alert.severity, Severity::Critical);
        assert_eq!(out.alert.exclude_channel.as_deref(), Some("ops"));
        assert_eq!(out.failed_notification, Some((n, "vm_not_found: gone".into())));
        assert!(failed_operation(&failed(OperationKind::AlertDeliver, &json!({"x": 1}))).is_none());
    }

    #[test]
    fn a_bad_backup_is_critical_per_vm_and_only_the_newest_good_one_resolves_it() {
        use crate::backup::{Finding, VerifyLevel, VerifyReport, VerifyResult};
        let report = |result, findings| VerifyReport {
            level: VerifyLevel::Checksum,
            result,
            findings,
            warnings: vec![],
            files_checked: 2,
            bytes_checked: 10,
            boot: None,
        };
        let bad = report(VerifyResult::Failed, vec![Finding::new("checksum_mismatch", Some("disks/vda.qcow2"), "x")]);
        let v = BackupVerified { host: "hv1", vm: "web", backup: crate::BackupId::new(), report: &bad, newest: false };
        let Some(AlertChange::Raise(a)) = backup_verified(&v) else { panic!() };
        assert_eq!((a.severity, a.source), (Severity::Critical, AlertSource::Backup));
        assert_eq!(a.effective_dedup_key(), "backup:hv1:web");
        assert_eq!(a.labels.get("code").map(String::as_str), Some("checksum_mismatch"));
        assert!(a.message.contains("disks/vda.qcow2"), "{}", a.message);
        let good = report(VerifyResult::Ok, vec![]);
        assert_eq!(backup_verified(&BackupVerified { report: &good, ..v }), None);
        let resolved = backup_verified(&BackupVerified { report: &good, newest: true, ..v });
        assert!(matches!(resolved, Some(AlertChange::Resolve { dedup_key, .. }) if dedup_key == "backup:hv1:web"));
    }

    #[test]
    fn health_checks_fire_while_bad_and_resolve_only_on_the_way_back() {
        let m = Measurement::plain("kvm", Status::Error, "no /dev/kvm");
        let Some(AlertChange::Raise(a)) = health_check("hv1", &m, Status::Error, false) else { panic!() };
        assert_eq!((a.severity, a.effective_dedup_key().as_str()), (Severity::Critical, "health:hv1:kvm"));
        let Some(AlertChange::Raise(a)) = health_check("hv1", &m, Status::Warn, true) else { panic!() };
        assert_eq!(a.severity, Severity::Warning);
        assert!(matches!(health_check("hv1", &m, Status::Ok, true), Some(AlertChange::Resolve { .. })));
        assert_eq!(health_check("hv1", &m, Status::Ok, false), None);
    }

    #[test]
    fn the_fleet_monitor_raises_each_fact_once_and_resolves_what_fires() {
        let now = Timestamp::now();
        let beat = |host: &str, stopped, online| WorkerBeat {
            host: host.into(),
            last_heartbeat: now,
            heartbeat_s: 5,
            stopped,
            online,
        };
        let workers = [beat("lost", false, false), beat("back", false, true), beat("quiet", true, false)];
        let old = now.minus(Duration::from_secs(600));
        let runnable = [("q.late".to_owned(), old), ("q.fresh".to_owned(), now)];
        let firing = ["fleet:back:worker-offline".to_owned(), "fleet:backlog:q.gone".to_owned()];
        let facts = FleetFacts {
            workers: &workers,
            runnable: &runnable,
            firing: &firing,
            backlog_threshold: Duration::from_secs(300),
            now,
        };
        let keys: Vec<String> = fleet(&facts)
            .into_iter()
            .map(|c| match c {
                AlertChange::Raise(a) => format!("raise {}", a.effective_dedup_key()),
                AlertChange::Resolve { dedup_key, .. } => format!("resolve {dedup_key}"),
            })
            .collect();
        assert_eq!(
            keys,
            [
                "raise fleet:lost:worker-offline",
                "resolve fleet:back:worker-offline",
                "raise fleet:backlog:q.late",
                "resolve fleet:backlog:q.gone"
            ]
        );
        let quiet = FleetFacts { firing: &[], runnable: &[], workers: &workers[1..], ..facts };
        assert!(fleet(&quiet).is_empty(), "a quiet fleet writes nothing");
    }
}
