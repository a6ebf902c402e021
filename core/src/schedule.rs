//! Schedules: a cron expression (the `cron` crate; 5 fields as in crontab, or
//! 6-7 with seconds and year) in an IANA time zone, and what to enqueue when
//! it fires. Parsed once at the edge into a [`CronSpec`].

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{Error, Timestamp, closed_set::closed_set, operation::OperationKind};

/// A valid cron expression in a valid time zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    expr: String,
    schedule: cron::Schedule,
    tz: Tz,
}

impl CronSpec {
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, Error> {
        let fields = expr.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expr}"),
            6 | 7 => expr.to_owned(),
            n => {
                return Err(Error::invalid(
                    "invalid_cron",
                    format!("`{expr}` has {n} fields; expected 5 (min hour dom month dow) or 6-7 (with seconds, year)"),
                ));
            }
        };
        let schedule = cron::Schedule::from_str(&full)
            .map_err(|e| Error::invalid("invalid_cron", format!("`{expr}` is not a cron expression: {e}")))?;
        let tz = Tz::from_str(timezone)
            .map_err(|e| Error::invalid("invalid_timezone", format!("`{timezone}` is not an IANA time zone: {e}")))?;
        if schedule.upcoming(tz).next().is_none() {
            return Err(Error::invalid("invalid_cron", format!("`{expr}` never fires")));
        }
        Ok(Self { expr: expr.to_owned(), schedule, tz })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let local = t.0.with_timezone(&self.tz);
        self.schedule.after(&local).next().map(|d| Timestamp::from(d.with_timezone(&Utc)))
    }

    /// Fire times in `(from, to]`, at most `limit`.
    pub fn between(&self, from: Timestamp, to: Timestamp, limit: usize) -> Vec<Timestamp> {
        let local = from.0.with_timezone(&self.tz);
        self.schedule
            .after(&local)
            .map(|d| Timestamp::from(d.with_timezone(&Utc)))
            .take_while(|t| *t <= to)
            .take(limit)
            .collect()
    }

    /// The next `n` fire times, in the schedule's own zone (RFC 3339 with offset).
    pub fn upcoming_local(&self, after: Timestamp, n: usize) -> Vec<DateTime<chrono::FixedOffset>> {
        let local = after.0.with_timezone(&self.tz);
        self.schedule.after(&local).take(n).map(|d| d.fixed_offset()).collect()
    }
}

closed_set!(
    /// What happens to ticks that passed while no scheduler ran.
    MissedTicks, "invalid_missed_ticks", "a missed-tick policy" {
        /// Forget them; carry on with the next tick.
        Skip = "skip",
        /// Fire once for the latest of them, then carry on.
        RunOnce = "run_once",
    }
);

/// Operation kinds a schedule may fire.
pub fn schedulable(kind: &str) -> Result<OperationKind, Error> {
    let k = OperationKind::parse(kind)?;
    if k.vm_action().is_some() {
        return Err(Error::invalid(
            "invalid_kind",
            "schedules fire host-level work (e.g. `noop`), not VM power actions",
        ));
    }
    if k == OperationKind::BackupVerify {
        // Kept as a kind for the history of earlier versions; it comes back
        // when backups are verified for real.
        return Err(Error::invalid("invalid_kind", "backup verification is not available yet"));
    }
    Ok(k)
}

/// A tick this far behind "now" was missed (no scheduler ran at its time).
pub const MISSED_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_explains() {
        let every_minute = CronSpec::parse("*/5 * * * *", "Europe/Berlin").unwrap();
        let t = Timestamp(DateTime::parse_from_rfc3339("2026-01-01T00:02:00Z").unwrap().with_timezone(&Utc));
        assert_eq!(every_minute.next_after(t).unwrap().to_string(), "2026-01-01T00:05:00.000000Z");
        assert_eq!(every_minute.upcoming_local(t, 5).len(), 5);
        assert_eq!(every_minute.upcoming_local(t, 1)[0].to_rfc3339(), "2026-01-01T01:05:00+01:00");
        let secs = CronSpec::parse("* * * * * *", "UTC").unwrap();
        assert_eq!(secs.between(t, t.plus(std::time::Duration::from_secs(3)), 10).len(), 3);
        assert_eq!(CronSpec::parse("61 * * * *", "UTC").unwrap_err().code(), "invalid_cron");
        assert_eq!(CronSpec::parse("* * *", "UTC").unwrap_err().code(), "invalid_cron");
        assert_eq!(CronSpec::parse("* * * * *", "Mars/Olympus").unwrap_err().code(), "invalid_timezone");
        assert!(schedulable("vm.start").is_err() && schedulable("noop").is_ok());
        assert!(schedulable("backup.verify").is_err(), "no stub is schedulable");
    }
}
