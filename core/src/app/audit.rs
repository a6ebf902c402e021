//! Checking the audit chain: every row links to the one before and carries a
//! seal only the key can make; a checkpoint kept outside the database pins
//! the head, so rows cut off the end are noticed too.

use super::App;
use crate::{
    Result,
    audit::{AuditKey, Checkpoint},
    store::{AuditEvent, ChainCheck, GENESIS},
};

impl App {
    /// The chain's head now, sealed: keep it outside the database.
    pub async fn audit_checkpoint(&self) -> Result<Checkpoint> {
        let (sequence, hash) = self.store.audit_head().await?;
        Ok(Checkpoint::new(self.audit_key()?, sequence, &hash))
    }

    /// Walks the whole chain; with a checkpoint, also checks that the log
    /// still holds the head it recorded (nothing cut off, nothing replaced).
    pub async fn verify_audit_chain(&self, checkpoint: Option<&Checkpoint>) -> Result<ChainCheck> {
        let key = self.audit_key()?;
        let rows = self.store.audit_chain().await?;
        Ok(verify(&rows, key, checkpoint))
    }
}

/// The chain's verdict: ids run 1, 2, …; each row links to the previous
/// seal; keyed rows carry a valid MAC; unkeyed rows (written before the key
/// existed) may only precede the first keyed one; and a genuine checkpoint's
/// row is present with the seal it recorded.
pub(crate) fn verify(rows: &[AuditEvent], key: &AuditKey, checkpoint: Option<&Checkpoint>) -> ChainCheck {
    let broken = |id: i64, reason: &str| ChainCheck::Broken { id, reason: reason.to_owned() };
    if let Some(c) = checkpoint
        && !c.is_genuine(key)
    {
        return broken(c.sequence, "the checkpoint was not sealed with this key (forged or another key)");
    }
    let mut prev = GENESIS;
    let mut keyed_seen = false;
    for (expected, row) in (1..).zip(rows) {
        if row.id != expected {
            return broken(row.id, &format!("expected event {expected} here (rows deleted or inserted)"));
        }
        if row.prev_hash != prev {
            return broken(row.id, "does not link to the previous event");
        }
        let message = row.canonical();
        let sealed = if row.keyed {
            keyed_seen = true;
            key.seal(message.as_bytes()) == row.hash
        } else if keyed_seen {
            return broken(row.id, "an unkeyed event after keyed ones (rewritten without the key)");
        } else {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(message.as_bytes())) == row.hash
        };
        if !sealed {
            return broken(row.id, "content does not match its seal (edited)");
        }
        prev = &row.hash;
    }
    if let Some(c) = checkpoint
        && c.sequence > 0
    {
        match rows.get(c.sequence as usize - 1) {
            None => return broken(c.sequence, "the log ends before the checkpoint's head (truncated)"),
            Some(row) if row.hash != c.hash => {
                return broken(c.sequence, "the checkpoint's head was replaced");
            }
            Some(_) => {}
        }
    }
    ChainCheck::Intact { events: rows.len() }
}
