//! The dashboard's overview: what the ledger holds now and over the last
//! day, which hosts answer, which alerts fire.

use std::time::Duration;

use super::App;
use crate::{Result, alert::Severity, operation::OperationStatus, store::LedgerCounts};

/// The window "failed / succeeded recently" counts over.
pub const OVERVIEW_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Everything the overview page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    pub queued: i64,
    pub running: i64,
    pub retrying: i64,
    /// Finished within [`OVERVIEW_WINDOW`].
    pub failed: i64,
    pub succeeded: i64,
    pub hosts_online: usize,
    pub hosts_offline: usize,
    /// Firing alerts per severity, most severe first, zeros included.
    pub firing: Vec<(Severity, i64)>,
}

impl Overview {
    fn of(counts: &LedgerCounts, hosts_online: usize, hosts_offline: usize) -> Self {
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
            hosts_online,
            hosts_offline,
            firing,
        }
    }
}

impl App {
    pub async fn overview(&self) -> Result<Overview> {
        let now = self.now();
        let counts = self.store.ledger_counts(now.minus(OVERVIEW_WINDOW)).await?;
        let hosts = self.store.hosts().await?;
        let online = hosts.iter().filter(|h| h.online(now)).count();
        Ok(Overview::of(&counts, online, hosts.len() - online))
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
        let o = Overview::of(&counts, 1, 2);
        assert_eq!((o.queued, o.running, o.retrying, o.failed, o.succeeded), (0, 2, 0, 3, 0));
        assert_eq!((o.hosts_online, o.hosts_offline), (1, 2));
        assert_eq!(o.firing, vec![(Severity::Critical, 4), (Severity::Warning, 0), (Severity::Info, 1)]);
    }
}
