//! The audit log of admin changes, tamper-evident: each row stores a SHA-256
//! over its own content and the previous row's hash, so editing, deleting or
//! reordering a row breaks every link after it. Appends are serialised (one
//! SQLite writer; an advisory lock on PostgreSQL) so the chain never forks.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::types::Json;

use super::{Store, read_db, tx::on_tx};
use crate::{Result, Timestamp};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub before: Option<Json<Value>>,
    pub after: Option<Json<Value>>,
    pub prev_hash: String,
    pub hash: String,
}

/// What is being recorded.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub request_id: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    Intact {
        events: usize,
    },
    /// The first row whose hash or link does not hold.
    Broken {
        id: i64,
        reason: String,
    },
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const AUDIT_LOCK: i64 = 0x0068_6661_7564_6974; // "hfaudit"

fn digest(id: i64, at: &Timestamp, e: &AuditEntry<'_>, prev: &str) -> String {
    let canonical = json!([id, at.to_string(), e.actor, e.action, e.target, e.request_id, e.before, e.after, prev]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

const INSERT: &str = "INSERT INTO audit_events (id, at, actor, action, target, request_id, before, after, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const LAST: &str = "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1";

impl Store {
    pub async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, AuditEvent>(
                "SELECT id, at, actor, action, target, request_id, before, after, prev_hash, hash \
                 FROM audit_events ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }

    /// Walks the whole chain from the first row.
    pub async fn verify_audit_chain(&self) -> Result<ChainCheck> {
        let rows: Vec<AuditEvent> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, AuditEvent>(
                "SELECT id, at, actor, action, target, request_id, before, after, prev_hash, hash \
                 FROM audit_events ORDER BY id",
            )
            .fetch_all(pool)
            .await
        })?;
        let mut prev = GENESIS.to_owned();
        for (expected_id, row) in (1..).zip(rows.iter()) {
            if row.id != expected_id {
                return Ok(ChainCheck::Broken { id: row.id, reason: format!("expected event {expected_id} here") });
            }
            if row.prev_hash != prev {
                return Ok(ChainCheck::Broken { id: row.id, reason: "does not link to the previous event".into() });
            }
            let entry = AuditEntry {
                actor: &row.actor,
                action: &row.action,
                target: &row.target,
                request_id: row.request_id.as_deref(),
                before: row.before.as_ref().map(|j| j.0.clone()),
                after: row.after.as_ref().map(|j| j.0.clone()),
            };
            if digest(row.id, &row.at, &entry, &row.prev_hash) != row.hash {
                return Ok(ChainCheck::Broken {
                    id: row.id,
                    reason: "content does not match its hash (edited)".into(),
                });
            }
            prev = row.hash.clone();
        }
        Ok(ChainCheck::Intact { events: rows.len() })
    }
}

impl super::Tx {
    /// Appends one event to the chain, in the transaction of the change it
    /// records: the change and its audit entry commit together or not at all.
    pub async fn audit(&mut self, e: AuditEntry<'_>) -> Result<()> {
        let at = self.now();
        if self.is_postgres() {
            // Appends are serialised so that the chain never forks.
            on_tx!(self, |c, Db| sqlx::query::<Db>("SELECT pg_advisory_xact_lock($1)")
                .bind(AUDIT_LOCK)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        on_tx!(self, |c, Db| {
            let last: Option<(i64, String)> = sqlx::query_as::<Db, (i64, String)>(LAST).fetch_optional(&mut *c).await?;
            let (id, prev) = last.map_or((1, GENESIS.to_owned()), |(id, h)| (id + 1, h));
            let hash = digest(id, &at, &e, &prev);
            sqlx::query::<Db>(INSERT)
                .bind(id)
                .bind(at)
                .bind(e.actor)
                .bind(e.action)
                .bind(e.target)
                .bind(e.request_id)
                .bind(e.before.as_ref().map(Json))
                .bind(e.after.as_ref().map(Json))
                .bind(&prev)
                .bind(&hash)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
