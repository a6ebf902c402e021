//! PostgreSQL LISTEN for the ledger's wake-ups: commits in other processes
//! NOTIFY the queue they gave work to (see [`LedgerTx::announce`]), and this
//! process's queues look at once instead of at their next poll. A lost
//! connection is re-established with backoff; what it missed meanwhile a look
//! on reconnecting (and the poll interval) finds.
//!
//! [`LedgerTx::announce`]: super::tx::LedgerTx::announce

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::{Store, tx::WAKE_CHANNEL};

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
                    backoff = (backoff * 2).min(Duration::from_secs(5));
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
