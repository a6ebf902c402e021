//! The runner's slots: who waits for one to come back, and the free slots a
//! claim is made with.

use std::sync::Arc;

use hyperfleet_core::{
    operation::{Operation, WorkClass},
    store::ClaimGroup,
};
use tokio::sync::OwnedSemaphorePermit;

use crate::transport::Claimed;

/// Who waits for a slot to come back.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlotWaiters {
    /// Told whenever a slot may have come free: a queue waiting to reserve.
    pub(super) freed: Arc<tokio::sync::Notify>,
    /// Told when a slot held for work came back (not a fetch's reservation):
    /// a queue that found nothing it had slots for looks again then.
    pub(super) done: Arc<tokio::sync::Notify>,
}

impl SlotWaiters {
    /// Slots held for work came back: whoever waits for one looks again.
    pub(crate) fn slot_back(&self) {
        self.freed.notify_waiters();
        self.done.notify_waiters();
    }
}

/// The free slots of each class (up to [`super::MAX_BATCH`]), held while a queue
/// claims: the claim takes at most that many operations of each class, each
/// keeps one slot, and the rest are released when this is dropped.
#[derive(Debug)]
pub struct Reserved {
    pub(super) permits: Vec<(WorkClass, Vec<OwnedSemaphorePermit>)>,
}

impl Reserved {
    /// What a claim may take: per class with free slots, its kinds and how many.
    pub fn groups(&self) -> Vec<ClaimGroup> {
        self.permits.iter().map(|(class, permits)| ClaimGroup::of_class(*class, permits.len())).collect()
    }

    /// How many classes had free slots.
    pub fn classes(&self) -> usize {
        self.permits.len()
    }

    /// Whether every slot has been taken.
    pub fn is_empty(&self) -> bool {
        self.permits.iter().all(|(_, permits)| permits.is_empty())
    }

    /// One slot of `class`, if one is left.
    fn take(&mut self, class: WorkClass) -> Option<OwnedSemaphorePermit> {
        self.permits.iter_mut().find(|(c, _)| *c == class)?.1.pop()
    }

    /// What a claim made with these slots took, each in a slot of its class,
    /// to start; the slots left stay here.
    pub fn assign(&mut self, claimed: Vec<Operation>) -> crate::transport::Batch {
        let mut batch = Vec::with_capacity(claimed.len());
        for operation in claimed {
            // A claim takes at most the reserved slots of each class.
            let Some(slot) = self.take(operation.kind.class()) else {
                // Cannot happen; the lease then expires and the reaper gives the work back.
                tracing::error!(operation = %operation.id, "claimed a kind without a reserved slot");
                continue;
            };
            batch.push(Claimed { operation: Box::new(operation), slot });
        }
        batch
    }
}
