//! Schedules: a cron expression (the `cron` crate; 5 fields as in crontab, or
//! 6-7 with seconds and year) in an IANA time zone, and what to enqueue when
//! it fires. Parsed once at the edge into a [`CronSpec`].

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{Error, ScheduleId, Timestamp, closed_set::closed_set, operation::OperationKind};

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
    if k == OperationKind::BackupDelete {
        return Err(Error::invalid("invalid_kind", "deleting one backup is not scheduled work (use backup.prune)"));
    }
    Ok(k)
}

/// A tick this far behind "now" was missed (no scheduler ran at its time).
pub const MISSED_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// A schedule as a caller defines it; validated by [`ScheduleDef::check`].
#[derive(Debug, Clone)]
pub struct ScheduleDef {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub kind: String,
    pub params: serde_json::Value,
    pub host: Option<String>,
    pub enabled: bool,
    pub missed_ticks: MissedTicks,
    pub jitter_s: u32,
}

impl ScheduleDef {
    pub fn check(&self) -> Result<CronSpec, Error> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok_name {
            return Err(Error::invalid(
                "invalid_schedule_name",
                "schedule names are 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'",
            ));
        }
        if self.jitter_s > 3600 {
            return Err(Error::invalid("invalid_jitter", "`jitter_s` must be 0-3600"));
        }
        if !self.params.is_object() {
            return Err(Error::invalid("invalid_parameters", "`params` must be a JSON object"));
        }
        let kind = schedulable(&self.kind)?;
        crate::operation::check_params(kind, &self.params)?;
        if let Some(h) = &self.host {
            crate::vm::HostName::parse(h)?;
        }
        CronSpec::parse(&self.cron, &self.timezone)
    }
}

/// A tick's jitter: derived from the schedule and the tick, so that every
/// scheduler agrees when it is due.
pub fn jitter(id: ScheduleId, fire_time: Timestamp, jitter_s: i32) -> std::time::Duration {
    if jitter_s <= 0 {
        return std::time::Duration::ZERO;
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{id}{fire_time}").as_bytes());
    let n = u64::from_le_bytes(h[..8].try_into().unwrap_or_default());
    std::time::Duration::from_millis(n % (jitter_s as u64 * 1000))
}

/// What a due schedule fires now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirePlan {
    /// `(fire time, catch-up)`, oldest first.
    pub fires: Vec<(Timestamp, bool)>,
    /// Ticks that passed while no scheduler ran.
    pub missed: usize,
    /// The next tick after those considered.
    pub next: Option<Timestamp>,
}

/// The ticks of a schedule whose next fire was `was_next`, as of `now`: the
/// latest due tick fires once its jitter has passed (`None` until then); ticks
/// older than [`MISSED_AFTER`] were missed, and `run_once` fires the latest of
/// them as a catch-up.
pub fn plan(
    spec: &CronSpec,
    id: ScheduleId,
    was_next: Timestamp,
    missed_ticks: MissedTicks,
    jitter_s: i32,
    now: Timestamp,
) -> Option<FirePlan> {
    let ticks = spec.between(was_next.minus(std::time::Duration::from_micros(1)), now, 100_000);
    let &latest = ticks.last()?;
    if latest.plus(jitter(id, latest, jitter_s)) > now {
        return None;
    }
    let current = latest.plus(MISSED_AFTER) >= now;
    let missed = if current { &ticks[..ticks.len() - 1] } else { &ticks[..] };
    let mut fires = Vec::new();
    if let (MissedTicks::RunOnce, Some(&last_missed)) = (missed_ticks, missed.last()) {
        fires.push((last_missed, true));
    }
    if current {
        fires.push((latest, false));
    }
    Some(FirePlan { fires, missed: missed.len(), next: spec.next_after(latest) })
}

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
        assert!(schedulable("backup.verify").is_ok() && schedulable("backup.create").is_ok());
        assert!(schedulable("backup.prune").is_ok() && schedulable("backup.delete").is_err());
    }

    #[test]
    fn plans_fire_the_due_tick_once_and_catch_up_as_the_policy_says() {
        let spec = CronSpec::parse("* * * * *", "UTC").unwrap();
        let t = |m: &str| Timestamp(DateTime::parse_from_rfc3339(m).unwrap().with_timezone(&Utc));
        let id = ScheduleId::new();
        let due = t("2026-01-01T00:10:00Z");
        let p = plan(&spec, id, due, MissedTicks::Skip, 0, t("2026-01-01T00:10:01Z")).unwrap();
        assert_eq!((p.fires, p.missed, p.next), (vec![(due, false)], 0, Some(t("2026-01-01T00:11:00Z"))));
        assert!(plan(&spec, id, due, MissedTicks::Skip, 0, t("2026-01-01T00:09:59Z")).is_none(), "not yet");
        // Down for five minutes: skip forgets the missed ticks; run_once catches up with the latest.
        let late = t("2026-01-01T00:15:30Z");
        let p = plan(&spec, id, due, MissedTicks::Skip, 0, late).unwrap();
        assert_eq!((p.fires.len(), p.missed), (0, 6));
        let p = plan(&spec, id, due, MissedTicks::RunOnce, 0, late).unwrap();
        assert_eq!(p.fires, vec![(t("2026-01-01T00:15:00Z"), true)]);
        // Jitter is the same for every scheduler and within its bound.
        let j = jitter(id, due, 30);
        assert!(j == jitter(id, due, 30) && j < std::time::Duration::from_secs(30));
    }
}
