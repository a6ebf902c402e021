//! The dashboard's overview: what the ledger holds now and over the last
//! day (in figures and per quarter hour), which hosts answer, which alerts
//! fire, which health checks and backups need a look, what fires next.

use std::time::Duration;

use super::{App, BackupView};
use crate::{
    Result, Timestamp,
    alert::Severity,
    backup::VerificationState,
    health::HealthStatus,
    operation::OperationStatus,
    store::{BackupFilter, HealthStateRecord, HostRecord, LedgerCounts, ScheduleRecord},
};

/// The window "failed / succeeded recently" counts over.
pub const OVERVIEW_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The width of one bar of the overview's chart.
pub const CHART_BUCKET: Duration = Duration::from_secs(15 * 60);
/// How many of each list (schedules, checks, backups) the overview shows.
const LIST_LIMIT: usize = 8;

/// Operations that finished within one [`CHART_BUCKET`], by final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartBar {
    pub start: Timestamp,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl ChartBar {
    pub fn total(&self) -> i64 {
        self.succeeded + self.failed + self.cancelled
    }
}

/// Everything the overview page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub now: Timestamp,
    pub queued: i64,
    pub running: i64,
    pub retrying: i64,
    /// Since when the oldest runnable operation (of any queue) waits.
    pub oldest_runnable: Option<Timestamp>,
    /// Finished within [`OVERVIEW_WINDOW`].
    pub failed: i64,
    pub succeeded: i64,
    /// [`OVERVIEW_WINDOW`] in [`CHART_BUCKET`]s, oldest first.
    pub chart: Vec<ChartBar>,
    /// Every host, offline ones first, then by name.
    pub hosts: Vec<HostRecord>,
    /// Firing alerts per severity, most severe first, zeros included.
    pub firing: Vec<(Severity, i64)>,
    /// Health checks in `error`, then `warn` (at most [`LIST_LIMIT`]).
    pub checks: Vec<HealthStateRecord>,
    /// Enabled schedules by their next fire, soonest first (at most [`LIST_LIMIT`]).
    pub next_fires: Vec<ScheduleRecord>,
    /// Backups whose verification failed, is outdated or never ran — in that order.
    pub backups: Vec<BackupView>,
}

impl Overview {
    fn of(counts: &LedgerCounts, now: Timestamp) -> Self {
        let count = |list: &[(OperationStatus, i64)], s| list.iter().find(|(st, _)| *st == s).map_or(0, |(_, n)| *n);
        let firing = [Severity::Critical, Severity::Warning, Severity::Info]
            .into_iter()
            .map(|sev| (sev, counts.firing.iter().find(|(s, _)| *s == sev).map_or(0, |(_, n)| *n)))
            .collect();
        Self {
            queued: count(&counts.unfinished, OperationStatus::Queued),
            running: count(&counts.unfinished, OperationStatus::Running),
            retrying: count(&counts.unfinished, OperationStatus::Retrying),
            failed: count(&counts.finished, OperationStatus::Failed),
            succeeded: count(&counts.finished, OperationStatus::Succeeded),
            firing,
            now,
            oldest_runnable: None,
            chart: Vec::new(),
            hosts: Vec::new(),
            checks: Vec::new(),
            next_fires: Vec::new(),
            backups: Vec::new(),
        }
    }

    pub fn hosts_online(&self) -> usize {
        self.hosts.iter().filter(|h| h.online(self.now)).count()
    }
}

/// The chart's bars from grouped counts `(bucket index, status, n)`:
/// every bucket present (zeros included), a count past the last bucket (one
/// that finished this very instant) in the last.
pub fn chart(since: Timestamp, counts: &[(i64, OperationStatus, i64)]) -> Vec<ChartBar> {
    let buckets = (OVERVIEW_WINDOW.as_secs() / CHART_BUCKET.as_secs()) as usize;
    let mut bars: Vec<ChartBar> = (0..buckets)
        .map(|i| ChartBar { start: since.plus(CHART_BUCKET * i as u32), succeeded: 0, failed: 0, cancelled: 0 })
        .collect();
    for &(index, status, n) in counts {
        let bar = &mut bars[(index.max(0) as usize).min(buckets - 1)];
        match status {
            OperationStatus::Succeeded => bar.succeeded += n,
            OperationStatus::Failed => bar.failed += n,
            OperationStatus::Cancelled => bar.cancelled += n,
            _ => {}
        }
    }
    bars
}

impl App {
    pub async fn overview(&self) -> Result<Overview> {
        let now = self.now();
        let since = now.minus(OVERVIEW_WINDOW);
        let counts = self.store.ledger_counts(since).await?;
        let mut o = Overview::of(&counts, now);
        o.oldest_runnable = self.store.oldest_runnable(now).await?.into_iter().map(|(_, t)| t).min();
        o.chart = chart(since, &self.store.finished_buckets(since, CHART_BUCKET.as_secs() as u32).await?);
        o.hosts = self.store.hosts().await?;
        o.hosts.sort_by(|a, b| (a.online(now), &a.name).cmp(&(b.online(now), &b.name)));
        let mut checks: Vec<_> =
            self.store.health_states(None).await?.into_iter().filter(|c| c.status != HealthStatus::Ok).collect();
        checks.sort_by(|a, b| b.status.cmp(&a.status).then(a.since.cmp(&b.since)));
        checks.truncate(LIST_LIMIT);
        o.checks = checks;
        let mut fires: Vec<_> =
            self.store.schedules().await?.into_iter().filter(|s| s.enabled && s.next_fire_at.is_some()).collect();
        fires.sort_by_key(|s| s.next_fire_at);
        fires.truncate(LIST_LIMIT);
        o.next_fires = fires;
        for state in [VerificationState::Failed, VerificationState::Outdated, VerificationState::None] {
            let room = LIST_LIMIT.saturating_sub(o.backups.len());
            if room == 0 {
                break;
            }
            let filter = BackupFilter { limit: room as u32, ..BackupFilter::default() };
            o.backups.extend(self.backups(filter, Some(state)).await?.items);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_groups_count_zero_and_severities_come_most_severe_first() {
        let counts = LedgerCounts {
            unfinished: vec![(OperationStatus::Running, 2)],
            finished: vec![(OperationStatus::Failed, 3), (OperationStatus::Cancelled, 9)],
            firing: vec![(Severity::Info, 1), (Severity::Critical, 4)],
        };
        let o = Overview::of(&counts, Timestamp::now());
        assert_eq!((o.queued, o.running, o.retrying, o.failed, o.succeeded), (0, 2, 0, 3, 0));
        assert_eq!(o.firing, vec![(Severity::Critical, 4), (Severity::Warning, 0), (Severity::Info, 1)]);
    }

    #[test]
    fn the_chart_has_every_quarter_hour_of_the_day_and_clamps_the_edges() {
        let since = Timestamp::now();
        let bars = chart(
            since,
            &[
                (0, OperationStatus::Succeeded, 5),
                (0, OperationStatus::Failed, 1),
                (95, OperationStatus::Cancelled, 2),
                (96, OperationStatus::Succeeded, 1),
                (-1, OperationStatus::Failed, 1),
            ],
        );
        assert_eq!(bars.len(), 96);
        assert_eq!((bars[0].succeeded, bars[0].failed, bars[0].cancelled), (5, 2, 0));
        assert_eq!((bars[95].succeeded, bars[95].cancelled, bars[95].total()), (1, 2, 3));
        assert_eq!(bars[1].start, since.plus(CHART_BUCKET));
        assert_eq!(bars.iter().map(ChartBar::total).sum::<i64>(), 10);
    }
}
