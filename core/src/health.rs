//! Health checks' vocabulary and their hysteresis. A check measures a value
//! and judges it against thresholds; a state machine per (host, check) turns
//! those judgements into a status that enters `warn`/`error` only after the
//! threshold has held for its `for` duration and leaves only below a separate
//! clear threshold — so a value hovering at a threshold does not flap.

use serde::{Deserialize, Serialize};

use crate::{Timestamp, closed_set::closed_set};

closed_set!(
    /// A check's status; ordered `ok < warn < error`.
    HealthStatus, "invalid_health_status", "a health status" { Ok = "ok", Warn = "warn", Error = "error" }
);

/// The health module's own short name for [`HealthStatus`].
pub type Status = HealthStatus;

/// One measurement's verdict before hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Raw {
    /// At or past a threshold (or clearly fine: `Level(Ok)`).
    Level(Status),
    /// Between the clear threshold and the warn threshold: keep the current status.
    Hold,
}

impl Raw {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Level(s) => s.as_str(),
            Self::Hold => "hold",
        }
    }
}

/// Thresholds of one numeric check. For "higher is worse" values (used %,
/// age, count) `warn <= error` and `clear < warn`; for "lower is worse" values
/// (free %) the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub warn: f64,
    pub error: f64,
    pub clear: f64,
    /// Seconds a threshold must hold before the status changes to it.
    #[serde(default)]
    pub for_s: u64,
}

impl Threshold {
    pub const fn new(warn: f64, error: f64, clear: f64, for_s: u64) -> Self {
        Self { warn, error, clear, for_s }
    }

    pub fn judge(&self, value: f64, higher_is_worse: bool) -> Raw {
        let past = |limit: f64| if higher_is_worse { value >= limit } else { value <= limit };
        let clear = if higher_is_worse { value < self.clear } else { value > self.clear };
        if past(self.error) {
            Raw::Level(Status::Error)
        } else if past(self.warn) {
            Raw::Level(Status::Warn)
        } else if clear {
            Raw::Level(Status::Ok)
        } else {
            Raw::Hold
        }
    }
}

/// A check's persisted state.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckState {
    pub status: Status,
    pub since: Timestamp,
    /// A worse status seen but not yet held for `for_s`.
    pub candidate: Option<(Status, Timestamp)>,
}

/// Applies one verdict to the state; returns the new state and, when the
/// status changed, the transition `(from, to)`.
pub fn step(prev: Option<&CheckState>, raw: Raw, for_s: u64, now: Timestamp) -> (CheckState, Option<(Status, Status)>) {
    let prev = prev.cloned().unwrap_or(CheckState { status: Status::Ok, since: now, candidate: None });
    let target = match raw {
        Raw::Hold => return (CheckState { candidate: None, ..prev }, None),
        Raw::Level(s) => s,
    };
    if target == prev.status {
        return (CheckState { candidate: None, ..prev }, None);
    }
    // Recovering (to a better status) needs only the clear threshold, which `Level` already means.
    let held = target < prev.status
        || for_s == 0
        || prev.candidate.is_some_and(|(c, since)| c == target && now.millis_since(since) >= for_s as f64 * 1000.0);
    if held {
        let from = prev.status;
        (CheckState { status: target, since: now, candidate: None }, Some((from, target)))
    } else {
        let since = match prev.candidate {
            Some((c, since)) if c == target => since,
            _ => now,
        };
        (CheckState { candidate: Some((target, since)), ..prev }, None)
    }
}

/// One check's outcome in a run, before hysteresis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub check: String,
    pub raw: Raw,
    pub message: String,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub thresholds: Option<Threshold>,
    pub for_s: u64,
}

impl Measurement {
    /// A yes/no check: no thresholds, no hysteresis.
    pub fn plain(check: &str, status: Status, message: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            raw: Raw::Level(status),
            message: message.into(),
            value: None,
            unit: None,
            thresholds: None,
            for_s: 0,
        }
    }

    /// A measured value judged against `t`.
    pub fn measured(check: &str, value: f64, unit: &str, t: Threshold, higher_is_worse: bool, message: String) -> Self {
        Self {
            check: check.into(),
            raw: t.judge(value, higher_is_worse),
            message,
            value: Some(value),
            unit: Some(unit.into()),
            thresholds: Some(t),
            for_s: t.for_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_both_directions() {
        let used = Threshold::new(85.0, 95.0, 70.0, 0);
        assert_eq!(used.judge(96.0, true), Raw::Level(Status::Error));
        assert_eq!(used.judge(90.0, true), Raw::Level(Status::Warn));
        assert_eq!(used.judge(80.0, true), Raw::Hold);
        assert_eq!(used.judge(60.0, true), Raw::Level(Status::Ok));
        let free = Threshold::new(20.0, 10.0, 25.0, 0);
        assert_eq!(free.judge(5.0, false), Raw::Level(Status::Error));
        assert_eq!(free.judge(15.0, false), Raw::Level(Status::Warn));
        assert_eq!(free.judge(22.0, false), Raw::Hold);
        assert_eq!(free.judge(50.0, false), Raw::Level(Status::Ok));
    }

    #[test]
    fn hysteresis_needs_the_for_duration_and_the_clear_threshold() {
        let t0 = Timestamp::now();
        let at = |s: u64| t0.plus(std::time::Duration::from_secs(s));
        let warn = Raw::Level(Status::Warn);
        let (s, tr) = step(None, warn, 300, at(0));
        assert_eq!((s.status, tr), (Status::Ok, None), "not yet held");
        let (s, tr) = step(Some(&s), warn, 300, at(200));
        assert_eq!((s.status, tr), (Status::Ok, None));
        let (s, tr) = step(Some(&s), warn, 300, at(301));
        assert_eq!((s.status, tr), (Status::Warn, Some((Status::Ok, Status::Warn))));
        let (s, tr) = step(Some(&s), Raw::Hold, 300, at(400));
        assert_eq!((s.status, tr), (Status::Warn, None), "between clear and warn it stays");
        let (s, tr) = step(Some(&s), Raw::Level(Status::Ok), 300, at(500));
        assert_eq!((s.status, tr), (Status::Ok, Some((Status::Warn, Status::Ok))));
        // A dip below the threshold resets the candidate.
        let (s, _) = step(Some(&s), warn, 300, at(600));
        let (s, _) = step(Some(&s), Raw::Level(Status::Ok), 300, at(700));
        let (s, tr) = step(Some(&s), warn, 300, at(950));
        assert_eq!((s.status, tr), (Status::Ok, None), "the 300 s start again");
    }
}
