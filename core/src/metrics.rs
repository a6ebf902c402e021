//! Prometheus metrics: what one attempt's end adds to the counters (kept in
//! the database, incremented in the transaction that records the attempt, so
//! they count exactly once across workers and restarts), and the text format.
//! Label values are closed-set names and host/queue names — low cardinality,
//! never operation ids or VM names.

use std::fmt::Write;

use std::collections::BTreeMap;

use crate::{
    Timestamp,
    backup::{BackupState, VerificationState},
    operation::{AttemptOutcome, OperationKind, OperationStatus},
};

/// A histogram kept as database counters: its series and bucket bounds.
///
/// An observation is stored as one count in its own bin (the lowest bound at
/// or above it, or `+Inf`) and its value in the sum: two counter rows, where
/// the cumulative buckets and the count it shows are fourteen, each a row
/// every batch of finished attempts would update. The text format's
/// cumulative buckets and count are summed from the bins when read (plus any
/// cumulative rows kept by earlier versions, which no longer grow).
#[derive(Debug)]
pub struct Histogram {
    pub name: &'static str,
    /// Stored only: the per-bin counts.
    bin: &'static str,
    bucket: &'static str,
    sum: &'static str,
    count: &'static str,
    bounds: &'static [f64],
    help: &'static str,
}

/// How long attempts ran (seconds), by kind.
pub const ATTEMPT_DURATION: Histogram = Histogram {
    name: "hyperfleet_attempt_duration_seconds",
    bin: "hyperfleet_attempt_duration_seconds_bin",
    bucket: "hyperfleet_attempt_duration_seconds_bucket",
    sum: "hyperfleet_attempt_duration_seconds_sum",
    count: "hyperfleet_attempt_duration_seconds_count",
    bounds: &[0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 60.0, 300.0, 1800.0],
    help: "How long attempts ran, by kind.",
};

/// How long attempts waited in their queue (seconds), by kind.
pub const QUEUE_WAIT: Histogram = Histogram {
    name: "hyperfleet_queue_wait_seconds",
    bin: "hyperfleet_queue_wait_seconds_bin",
    bucket: "hyperfleet_queue_wait_seconds_bucket",
    sum: "hyperfleet_queue_wait_seconds_sum",
    count: "hyperfleet_queue_wait_seconds_count",
    bounds: &[0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0],
    help: "How long attempts waited to start from when their operation became runnable (created, or due for a retry), by kind.",
};

impl Histogram {
    /// One observation as counter increments: its bin and the sum.
    fn observe(&self, out: &mut Vec<Delta>, kind: &str, value: f64) {
        let le = self.bounds.iter().find(|le| value <= **le).map_or_else(|| "+Inf".to_owned(), f64::to_string);
        out.push(Delta { name: self.bin, labels: format!("kind=\"{kind}\",le=\"{le}\""), value: 1.0 });
        out.push(Delta { name: self.sum, labels: format!("kind=\"{kind}\""), value });
    }

    /// Its family from the stored counters: every bucket of every kind seen,
    /// in bound order, each the sum of the bins at or below it.
    fn family(&self, counters: &[(String, String, f64)]) -> Family {
        let value = |name: &str, labels: &str| {
            counters.iter().find(|(n, l, _)| n == name && l == labels).map_or(0.0, |(_, _, v)| *v)
        };
        let mut kinds: Vec<&String> = counters.iter().filter(|(n, _, _)| n == self.sum).map(|(_, l, _)| l).collect();
        kinds.sort();
        let mut samples = Vec::new();
        for kind_labels in kinds {
            let bounds = self.bounds.iter().map(|le| le.to_string()).chain(["+Inf".to_owned()]);
            let mut below = 0.0;
            for le in bounds {
                let labels = format!("{kind_labels},le=\"{le}\"");
                below += value(self.bin, &labels);
                samples.push((self.bucket.to_owned(), labels.clone(), below + value(self.bucket, &labels)));
            }
            samples.push((self.sum.to_owned(), kind_labels.clone(), value(self.sum, kind_labels)));
            samples.push((self.count.to_owned(), kind_labels.clone(), below + value(self.count, kind_labels)));
        }
        Family { name: self.name, kind: "histogram", help: self.help, samples }
    }
}

/// An increment of one counter series.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub name: &'static str,
    /// Rendered labels, e.g. `kind="noop",outcome="succeeded"`.
    pub labels: String,
    pub value: f64,
}

/// What an attempt that ended adds: one attempt by outcome, its duration and
/// how long it waited in its queue (from when it became runnable — created,
/// or due for its retry — to its start) in histograms, and — when the
/// operation is now finished — one operation by final status.
pub fn attempt_ended(
    kind: OperationKind,
    outcome: AttemptOutcome,
    seconds: f64,
    waited: Option<f64>,
    finished: Option<OperationStatus>,
) -> Vec<Delta> {
    let kind = kind.as_str();
    let mut out = vec![Delta {
        name: "hyperfleet_attempts_total",
        labels: format!("kind=\"{kind}\",outcome=\"{}\"", outcome.as_str()),
        value: 1.0,
    }];
    ATTEMPT_DURATION.observe(&mut out, kind, seconds.max(0.0));
    if let Some(waited) = waited {
        QUEUE_WAIT.observe(&mut out, kind, waited.max(0.0));
    }
    if let Some(status) = finished {
        out.push(Delta {
            name: "hyperfleet_operations_finished_total",
            labels: format!("kind=\"{kind}\",status=\"{}\"", status.as_str()),
            value: 1.0,
        });
    }
    out
}

/// Sums increments of the same series, so that many attempts' counters are
/// appended as one row per series; first-seen order.
pub fn merge(deltas: Vec<Delta>) -> Vec<Delta> {
    let mut out: Vec<Delta> = Vec::new();
    let mut at: std::collections::HashMap<(&'static str, String), usize> = std::collections::HashMap::new();
    for d in deltas {
        match at.get(&(d.name, d.labels.clone())) {
            Some(&i) => out[i].value += d.value,
            None => {
                at.insert((d.name, d.labels.clone()), out.len());
                out.push(d);
            }
        }
    }
    out
}

/// One metric family for the text format.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    pub help: &'static str,
    /// (series name, labels, value); series names extend `name` for histograms.
    pub samples: Vec<(String, String, f64)>,
}

/// The families a store's counters hold, in the text format's grouping: a
/// histogram shows every bucket of every kind it has seen, in bound order.
pub fn counter_families(counters: &[(String, String, f64)]) -> Vec<Family> {
    let of = |name: &str| {
        let mut samples: Vec<(String, String, f64)> = counters.iter().filter(|(n, _, _)| n == name).cloned().collect();
        samples.sort_by(|a, b| a.1.cmp(&b.1));
        samples
    };
    let attempts = Family {
        name: "hyperfleet_attempts_total",
        kind: "counter",
        help: "Attempts that ended, by kind and outcome.",
        samples: of("hyperfleet_attempts_total"),
    };
    let finished = Family {
        name: "hyperfleet_operations_finished_total",
        kind: "counter",
        help: "Operations that finished, by kind and final status.",
        samples: of("hyperfleet_operations_finished_total"),
    };
    vec![attempts, finished, ATTEMPT_DURATION.family(counters), QUEUE_WAIT.family(counters)]
}

/// One backup as the metrics page sees it.
#[derive(Debug, Clone)]
pub struct BackupFact {
    pub host: String,
    pub vm: String,
    pub state: BackupState,
    pub finished_at: Option<Timestamp>,
    /// Derived with `backup::verification_state` (meaningful once complete).
    pub verification: VerificationState,
}

/// Backups by host and state, complete backups by verification state, and
/// freshness per host: when its newest complete backup finished, and the age
/// of the stalest VM's newest one (the VM a missed backup shows up on first).
/// VM names stay out of the labels; the per-VM view is `GET /api/v1/backups`.
pub fn backup_families(facts: &[BackupFact], now: Timestamp) -> Vec<Family> {
    let mut by_state: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_verification: BTreeMap<String, f64> = BTreeMap::new();
    // Per host, per VM: when its newest complete backup finished.
    let mut newest: BTreeMap<&str, BTreeMap<&str, Timestamp>> = BTreeMap::new();
    for b in facts {
        *by_state.entry(format!("host=\"{}\",state=\"{}\"", b.host, b.state.as_str())).or_default() += 1.0;
        if b.state != BackupState::Complete {
            continue;
        }
        let labels = format!("host=\"{}\",verification=\"{}\"", b.host, b.verification.as_str());
        *by_verification.entry(labels).or_default() += 1.0;
        if let Some(at) = b.finished_at {
            let slot = newest.entry(&b.host).or_default().entry(&b.vm).or_insert(at);
            if at > *slot {
                *slot = at;
            }
        }
    }
    let gauge = |name: &'static str, help: &'static str, samples: Vec<(String, f64)>| Family {
        name,
        kind: "gauge",
        help,
        samples: samples.into_iter().map(|(l, v)| (name.to_owned(), l, v)).collect(),
    };
    let host_label = |h: &str| format!("host=\"{h}\"");
    let newest_at = newest
        .iter()
        .filter_map(|(h, vms)| vms.values().max().map(|t| (host_label(h), t.0.timestamp_millis() as f64 / 1000.0)))
        .collect();
    let stalest = newest
        .iter()
        .filter_map(|(h, vms)| vms.values().min().map(|t| (host_label(h), now.millis_since(*t) / 1000.0)))
        .collect();
    vec![
        gauge("hyperfleet_backups", "Backups not deleted, by host and state.", by_state.into_iter().collect()),
        gauge(
            "hyperfleet_backups_verification",
            "Complete backups by host and verification state (none, ok, failed, outdated).",
            by_verification.into_iter().collect(),
        ),
        gauge(
            "hyperfleet_backup_newest_timestamp_seconds",
            "When the host's newest complete backup finished (Unix time).",
            newest_at,
        ),
        gauge(
            "hyperfleet_backup_stalest_age_seconds",
            "Per host, over VMs with a complete backup: the age of the oldest newest backup.",
            stalest,
        ),
    ]
}

/// The Prometheus text exposition format (version 0.0.4).
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (name, labels, value) in &f.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_attempts_name_each_series_once_with_the_sum() {
        let fast = attempt_ended(
            OperationKind::Noop,
            AttemptOutcome::Succeeded,
            0.001,
            None,
            Some(OperationStatus::Succeeded),
        );
        let slow =
            attempt_ended(OperationKind::Noop, AttemptOutcome::Succeeded, 2.0, None, Some(OperationStatus::Succeeded));
        let merged = merge(fast.iter().chain(&slow).cloned().collect());
        let value = |name: &str, labels: &str| {
            let found: Vec<&Delta> = merged.iter().filter(|d| d.name == name && d.labels == labels).collect();
            assert_eq!(found.len(), 1, "{name}{{{labels}}} once");
            found[0].value
        };
        assert_eq!(value("hyperfleet_attempts_total", "kind=\"noop\",outcome=\"succeeded\""), 2.0);
        assert_eq!(value("hyperfleet_attempt_duration_seconds_bin", "kind=\"noop\",le=\"0.005\""), 1.0);
        assert_eq!(value("hyperfleet_attempt_duration_seconds_bin", "kind=\"noop\",le=\"2.5\""), 1.0);
        assert!((value("hyperfleet_attempt_duration_seconds_sum", "kind=\"noop\"") - 2.001).abs() < 1e-9);
        assert_eq!(value("hyperfleet_operations_finished_total", "kind=\"noop\",status=\"succeeded\""), 2.0);
    }

    #[test]
    fn an_attempt_counts_once_with_its_duration_in_its_own_bin() {
        let d = attempt_ended(
            OperationKind::Noop,
            AttemptOutcome::Succeeded,
            0.2,
            Some(0.03),
            Some(OperationStatus::Succeeded),
        );
        let get = |name: &str, labels: &str| d.iter().find(|x| x.name == name && x.labels == labels).map(|x| x.value);
        assert_eq!(get("hyperfleet_attempts_total", "kind=\"noop\",outcome=\"succeeded\""), Some(1.0));
        assert_eq!(get("hyperfleet_attempt_duration_seconds_bin", "kind=\"noop\",le=\"0.1\""), None);
        assert_eq!(get("hyperfleet_attempt_duration_seconds_bin", "kind=\"noop\",le=\"0.25\""), Some(1.0));
        assert_eq!(get("hyperfleet_attempt_duration_seconds_bin", "kind=\"noop\",le=\"+Inf\""), None);
        assert_eq!(get("hyperfleet_attempt_duration_seconds_sum", "kind=\"noop\""), Some(0.2));
        assert_eq!(get("hyperfleet_operations_finished_total", "kind=\"noop\",status=\"succeeded\""), Some(1.0));
        assert_eq!(get("hyperfleet_queue_wait_seconds_bin", "kind=\"noop\",le=\"0.025\""), None);
        assert_eq!(get("hyperfleet_queue_wait_seconds_bin", "kind=\"noop\",le=\"0.1\""), Some(1.0));
        assert!(d.iter().all(|x| !x.name.ends_with("_bucket") && !x.name.ends_with("_count")), "both summed from bins");
        assert_eq!(d.len(), 6, "one attempt, a bin and a sum per histogram, one finished operation");
        let retry = attempt_ended(OperationKind::Noop, AttemptOutcome::Failed, 0.0, None, None);
        assert!(retry.iter().all(|x| x.name != "hyperfleet_operations_finished_total"));
        assert!(retry.iter().all(|x| !x.name.starts_with("hyperfleet_queue_wait")), "no wait known, none counted");
    }

    #[test]
    fn backups_count_by_state_and_verification_and_freshness_follows_the_stalest_vm() {
        let now = Timestamp::now();
        let hours = |h: u64| Some(now.minus(std::time::Duration::from_secs(3600 * h)));
        let fact = |vm: &str, state, finished_at, verification| BackupFact {
            host: "hv1".into(),
            vm: vm.into(),
            state,
            finished_at,
            verification,
        };
        let facts = [
            fact("a", BackupState::Complete, hours(30), VerificationState::Ok),
            fact("a", BackupState::Complete, hours(2), VerificationState::None),
            fact("b", BackupState::Complete, hours(10), VerificationState::Failed),
            fact("b", BackupState::Failed, None, VerificationState::None),
            fact("c", BackupState::Creating, None, VerificationState::None),
        ];
        let f = backup_families(&facts, now);
        let get = |i: usize, labels: &str| f[i].samples.iter().find(|s| s.1 == labels).map(|s| s.2);
        assert_eq!(get(0, "host=\"hv1\",state=\"complete\""), Some(3.0));
        assert_eq!(get(0, "host=\"hv1\",state=\"failed\""), Some(1.0));
        assert_eq!(get(0, "host=\"hv1\",state=\"creating\""), Some(1.0));
        assert_eq!(get(1, "host=\"hv1\",verification=\"ok\""), Some(1.0));
        assert_eq!(get(1, "host=\"hv1\",verification=\"failed\""), Some(1.0));
        assert_eq!(get(1, "host=\"hv1\",verification=\"none\""), Some(1.0));
        let newest = hours(2).map(|t| t.0.timestamp_millis() as f64 / 1000.0);
        assert_eq!(get(2, "host=\"hv1\""), newest);
        assert_eq!(get(3, "host=\"hv1\""), Some(36_000.0), "b's newest is 10 h old; a has one of 2 h");
        assert!(backup_families(&[], now).iter().all(|f| f.samples.is_empty()));
    }

    #[test]
    fn the_text_format_has_help_type_and_labelled_samples() {
        let f = Family {
            name: "hyperfleet_x",
            kind: "gauge",
            help: "X.",
            samples: vec![
                ("hyperfleet_x".into(), String::new(), 1.0),
                ("hyperfleet_x".into(), "host=\"hv1\"".into(), 2.0),
            ],
        };
        assert_eq!(
            render(&[f]),
            "# HELP hyperfleet_x X.\n# TYPE hyperfleet_x gauge\nhyperfleet_x 1\nhyperfleet_x{host=\"hv1\"} 2\n"
        );
        // An earlier version's cumulative rows (one observation of 3 ms),
        // then bins: two of 50 ms and one above every bound.
        let row = |name: &str, labels: String, value| (name.to_owned(), labels, value);
        let mut counters: Vec<(String, String, f64)> = ATTEMPT_DURATION
            .bounds
            .iter()
            .map(f64::to_string)
            .chain(["+Inf".to_owned()])
            .map(|le| row("hyperfleet_attempt_duration_seconds_bucket", format!("kind=\"noop\",le=\"{le}\""), 1.0))
            .collect();
        counters.push(row("hyperfleet_attempt_duration_seconds_count", "kind=\"noop\"".into(), 1.0));
        counters.push(row("hyperfleet_attempt_duration_seconds_sum", "kind=\"noop\"".into(), 4000.103));
        counters.push(row("hyperfleet_attempt_duration_seconds_bin", "kind=\"noop\",le=\"0.1\"".into(), 2.0));
        counters.push(row("hyperfleet_attempt_duration_seconds_bin", "kind=\"noop\",le=\"+Inf\"".into(), 1.0));
        let h = &counter_families(&counters)[2];
        assert_eq!(h.samples.len(), ATTEMPT_DURATION.bounds.len() + 3, "every bucket, then sum and count");
        assert!(counter_families(&counters)[3].samples.is_empty(), "no queue wait seen, no series");
        let of = |series: &str, le: Option<&str>| {
            let labels = le.map_or("kind=\"noop\"".to_owned(), |le| format!("kind=\"noop\",le=\"{le}\""));
            h.samples.iter().find(|(n, l, _)| n == series && *l == labels).map(|s| s.2)
        };
        let bucket = "hyperfleet_attempt_duration_seconds_bucket";
        assert_eq!(h.samples[0], (bucket.into(), "kind=\"noop\",le=\"0.005\"".into(), 1.0));
        assert_eq!(of(bucket, Some("0.025")), Some(1.0));
        assert_eq!(of(bucket, Some("0.1")), Some(3.0));
        assert_eq!(of(bucket, Some("1800")), Some(3.0));
        assert_eq!(of(bucket, Some("+Inf")), Some(4.0));
        assert_eq!(of("hyperfleet_attempt_duration_seconds_count", None), Some(4.0));
        assert_eq!(of("hyperfleet_attempt_duration_seconds_sum", None), Some(4000.103));
    }
}
