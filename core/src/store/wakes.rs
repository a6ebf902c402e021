//! PostgreSQL wake-ups between processes. Each process NOTIFYs the queues its
//! commits gave work to (see [`Wakes::announce`]), and LISTENs, so that its
//! queues look at once instead of at their next poll. A lost connection is
//! re-established with backoff; what it missed meanwhile a look on
//! reconnecting (and the poll interval) finds.

use std::time::Duration;

use sqlx::{PgPool, postgres::PgListener};

use super::{Store, tx::WAKE_CHANNEL};
use crate::queue::Wakes;

/// At most this many queues are announced by one statement.
const MAX_QUEUES: usize = 256;

/// Sends other processes the wake-ups of this one's commits, from one task,
/// after each commit and coalesced: the queues announced while a round is in
/// flight go out together in the next one, one NOTIFY per queue. (A NOTIFY in
/// the committing transaction itself would make PostgreSQL serialise those
/// commits on its notification queue, so no two could share a WAL flush.) A
/// NOTIFY lost to a crash right after its commit costs the other processes'
/// workers their poll interval, never work. Ends when `wakes` is dropped.
pub(super) fn spawn_announcer(pool: PgPool, wakes: &Wakes) {
    let (outbox, mut inbox) = tokio::sync::mpsc::unbounded_channel::<String>();
    wakes.announce_to(outbox);
    tokio::spawn(async move {
        let mut queues = Vec::with_capacity(MAX_QUEUES);
        while inbox.recv_many(&mut queues, MAX_QUEUES).await > 0 {
            queues.sort_unstable();
            queues.dedup();
            let sent = sqlx::query::<sqlx::Postgres>("SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q")
                .bind(WAKE_CHANNEL)
                .bind(&queues)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, ?queues, "could not announce work to other processes (they poll)");
            }
            queues.clear();
        }
    });
}

impl Store {
    /// Relays wake-ups from other processes to this one's queues until dropped
    /// (PostgreSQL; returns at once on SQLite).
    pub async fn relay_wakes(&self) {
        self.listen_for_wakes(|queue| match queue {
            Some(queue) => self.wakes.notify(queue),
            None => self.wakes.notify_all(),
        })
        .await;
    }

    /// Calls `woken` with the queue of every wake-up other processes commit,
    /// and with `None` after (re)connecting, when anything may have been
    /// missed — until dropped (PostgreSQL; returns at once on SQLite).
    pub async fn listen_for_wakes(&self, mut woken: impl FnMut(Option<&str>)) {
        let Some(pool) = self.postgres_pool().cloned() else { return };
        let mut backoff = Duration::from_millis(100);
        loop {
            let connected = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(WAKE_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match connected.await {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(error = %e, retry_in = ?backoff, "cannot listen for wake-ups");
                    tokio::time::sleep(backoff).await;
                    // At most a second: its reconnect is what tells the queues
                    // (backing off from failed fetches) that the database is back.
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            // Anything committed while not listening is found by a look now.
            woken(None);
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => woken(Some(n.payload())),
                    Ok(None) => {
                        tracing::debug!("wake-up connection lost; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "wake-up listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}
