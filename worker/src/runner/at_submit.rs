//! The runner as the store's local worker: free slots are filled in the
//! transaction that submits the work (see the store's group commit), and
//! what that claims starts through its queue's stream, like the completer's
//! claims.

use std::time::Duration;

use hyperfleet_core::{
    operation::Operation,
    store::{ClaimGroup, LocalWorker, Reservation},
};

use super::{Inner, Reserved};
use crate::completer::hand_back;

impl LocalWorker for Inner {
    fn reserve(&self, queue: &str, wanted: &[ClaimGroup]) -> Option<Box<dyn Reservation>> {
        if self.tracker.is_closed() || !self.handoff.serves(queue) {
            return None;
        }
        let reserved = self.try_reserve(|class| wanted.iter().filter(|g| g.class == class).map(|g| g.limit).sum())?;
        Some(Box::new(AtSubmit { reserved: Some(reserved), queue: queue.to_owned(), runner: self.handle() }))
    }
}

/// Slots held while a submit's transaction claims for them.
struct AtSubmit {
    /// `None` once started.
    reserved: Option<Reserved>,
    queue: String,
    runner: Handle,
}

/// What a reservation needs of its runner, without keeping the runner alive.
#[derive(Clone)]
pub(super) struct Handle {
    pub host: String,
    pub worker_id: String,
    pub lease: Duration,
    pub app: hyperfleet_core::app::App,
    pub backoff: hyperfleet_core::backoff::Backoff,
    pub handoff: std::sync::Arc<crate::completer::Handoff>,
    pub waiters: super::SlotWaiters,
}

impl Reservation for AtSubmit {
    fn groups(&self) -> Vec<ClaimGroup> {
        self.reserved.as_ref().map(Reserved::groups).unwrap_or_default()
    }

    fn claimant(&self) -> (&str, &str, Duration) {
        (&self.runner.host, &self.runner.worker_id, self.runner.lease)
    }

    fn start(mut self: Box<Self>, claimed: Vec<Operation>) {
        let Some(mut reserved) = self.reserved.take() else { return };
        let batch = reserved.assign(claimed);
        // Slots left unused go back; a queue that looked while they were held looks again.
        if !reserved.is_empty() {
            drop(reserved);
            self.runner.waiters.slot_back();
        }
        // Nothing taken (another process's worker was first): no task to start.
        if batch.is_empty() {
            return;
        }
        if let Err(back) = self.runner.handoff.send(&self.queue, batch) {
            // The queue's stream stopped meanwhile (the worker is stopping).
            let runner = self.runner.clone();
            tokio::spawn(async move { hand_back(&runner.app, &runner.worker_id, &runner.backoff, back).await });
        }
    }
}

impl Drop for AtSubmit {
    /// Unused slots go back, and whoever waits for a slot looks again.
    fn drop(&mut self) {
        if self.reserved.take().is_some() {
            self.runner.waiters.slot_back();
        }
    }
}
