//! What every reconciler shares: a run is small and idempotent ("make the
//! world match the ledger"), and its last run — when, how long, what it did,
//! what failed — is recorded where the API can read it, not only logged.

use std::time::{Duration, Instant};

use hyperfleet_core::store::{RunRecord, Store};

/// What one run did: `changed` says whether it wrote anything.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    pub changed: usize,
    pub summary: String,
}

impl Ran {
    pub fn nothing(summary: impl Into<String>) -> Self {
        Self { changed: 0, summary: summary.into() }
    }

    pub fn did(changed: usize, summary: impl Into<String>) -> Self {
        Self { changed, summary: summary.into() }
    }
}

/// A quiet run is recorded at most this often (the 200 ms schedule tick would
/// otherwise write a row five times a second); a run that changed something
/// or failed is recorded at once.
const QUIET_RECORD_EVERY: Duration = Duration::from_secs(10);

/// Records the runs of one reconciler.
#[derive(Debug)]
pub struct Tracker {
    name: &'static str,
    scheduler: String,
    unrecorded_runs: i64,
    unrecorded_failures: i64,
    last_recorded: Option<Instant>,
}

impl Tracker {
    pub fn new(name: &'static str, scheduler: &str) -> Self {
        Self { name, scheduler: scheduler.to_owned(), unrecorded_runs: 0, unrecorded_failures: 0, last_recorded: None }
    }

    /// Runs `run` once and records how it went.
    pub async fn run<F>(&mut self, store: &Store, run: F)
    where
        F: Future<Output = hyperfleet_core::Result<Ran>>,
    {
        let started = Instant::now();
        let at = store.now();
        let result = run.await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.unrecorded_runs += 1;
        let (ok, summary, error) = match &result {
            Ok(ran) => {
                if ran.changed > 0 {
                    tracing::info!(reconciler = self.name, changed = ran.changed, "{}", ran.summary);
                }
                (true, ran.summary.clone(), None)
            }
            Err(e) => {
                self.unrecorded_failures += 1;
                tracing::warn!(reconciler = self.name, error = %e, "reconciler run failed; it runs again next time");
                (false, "failed".to_owned(), Some(e.to_string()))
            }
        };
        let changed = result.as_ref().is_ok_and(|r| r.changed > 0);
        let due = self.last_recorded.is_none_or(|t| t.elapsed() >= QUIET_RECORD_EVERY);
        if !(changed || !ok || due) {
            return;
        }
        let record = RunRecord {
            name: self.name,
            scheduler: &self.scheduler,
            at,
            duration_ms,
            ok,
            summary: &summary,
            error: error.as_deref(),
            runs: self.unrecorded_runs,
            failures: self.unrecorded_failures,
        };
        match store.record_reconciler_run(&record).await {
            Ok(()) => {
                self.unrecorded_runs = 0;
                self.unrecorded_failures = 0;
                self.last_recorded = Some(Instant::now());
            }
            Err(e) => tracing::warn!(reconciler = self.name, error = %e, "could not record the reconciler's run"),
        }
    }
}
