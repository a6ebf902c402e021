//! The completer: one task per worker that records the outcomes of the
//! attempts that ended meanwhile in one transaction, frees their slots once
//! that is committed, and answers each job (see the runner).

use std::sync::Arc;

use hyperfleet_core::{
    app::App,
    backoff::Backoff,
    operation::Operation,
    outcome::{Finish, Recorded},
};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::runner::MAX_BATCH;

/// An attempt that ended, waiting for the completer to record it. The
/// completer frees its slot once the outcome is committed (the slots of a
/// batch all at once, so that the next claim takes them together), or hands
/// the slot back with the error.
#[derive(Debug)]
pub(crate) struct Ended {
    pub op: Operation,
    pub finish: Finish,
    pub slot: OwnedSemaphorePermit,
    pub recorded: oneshot::Sender<Reply>,
}

pub(crate) type Reply = Result<Recorded, (hyperfleet_core::Error, OwnedSemaphorePermit)>;

/// The completer: records the outcomes that ended meanwhile in one
/// transaction, and answers each job once its outcome is committed (or not).
pub(crate) async fn complete(
    app: App,
    worker: String,
    backoff: Backoff,
    mut inbox: mpsc::UnboundedReceiver<Ended>,
    (freed, done): (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>),
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ended: Vec<(&Operation, Finish)> = batch.iter().map(|e| (&e.op, e.finish.clone())).collect();
        match app.finish_many(&ended, &worker, &backoff).await {
            Ok(recorded) => {
                let mut slots = Vec::with_capacity(batch.len());
                for (e, r) in batch.drain(..).zip(recorded) {
                    slots.push(e.slot);
                    let _ = e.recorded.send(Ok(r));
                }
                drop(slots);
                freed.notify_waiters();
                done.notify_waiters();
            }
            Err(e) if batch.len() == 1 => {
                if let Some(one) = batch.pop() {
                    let _ = one.recorded.send(Err((e, one.slot)));
                }
            }
            // One outcome may be what failed (e.g. its alert): record each alone.
            Err(e) => {
                tracing::warn!(error = %e, outcomes = batch.len(), "recording a batch failed; recording each alone");
                for one in batch.drain(..) {
                    match app.finish(&one.op, &worker, one.finish.clone(), &backoff).await {
                        Ok(r) => {
                            drop(one.slot);
                            freed.notify_waiters();
                            done.notify_waiters();
                            let _ = one.recorded.send(Ok(r));
                        }
                        Err(e) => {
                            let _ = one.recorded.send(Err((e, one.slot)));
                        }
                    }
                }
            }
        }
    }
}
