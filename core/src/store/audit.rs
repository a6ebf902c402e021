//! The audit log of admin changes as stored: each row carries the previous
//! row's seal and its own, a keyed MAC (see [`crate::audit`]) over its
//! content and that link. Appends are serialised (one SQLite writer; an
//! advisory lock on PostgreSQL) so the chain never forks. Checking the chain
//! is the application's (`App::verify_audit_chain`).

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::types::Json;

use super::{Store, read_db, tx::on_tx};
use crate::{Result, Timestamp, audit::AuditKey};

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
    /// Sealed with the audit key (rows of earlier versions hold a plain SHA-256).
    #[serde(skip)]
    pub keyed: bool,
}

impl AuditEvent {
    /// What the row's seal is computed over: its content and its link.
    pub fn canonical(&self) -> String {
        let before = self.before.as_ref().map(|j| &j.0);
        let after = self.after.as_ref().map(|j| &j.0);
        canonical(
            self.id,
            &self.at,
            &self.actor,
            &self.action,
            &self.target,
            self.request_id.as_deref(),
            before,
            after,
            &self.prev_hash,
        )
    }
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
    /// The first row whose seal or link does not hold, or where the log
    /// disagrees with a checkpoint.
    Broken {
        id: i64,
        reason: String,
    },
}

/// The link of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const AUDIT_LOCK: i64 = 0x0068_6661_7564_6974; // "hfaudit"

#[allow(clippy::too_many_arguments)]
fn canonical(
    id: i64,
    at: &Timestamp,
    actor: &str,
    action: &str,
    target: &str,
    request_id: Option<&str>,
    before: Option<&Value>,
    after: Option<&Value>,
    prev: &str,
) -> String {
    json!([id, at.to_string(), actor, action, target, request_id, before, after, prev]).to_string()
}

const COLUMNS: &str = "id, at, actor, action, target, request_id, before, after, prev_hash, hash, keyed";
const INSERT: &str = "INSERT INTO audit_events (id, at, actor, action, target, request_id, before, after, prev_hash, hash, keyed) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, TRUE)";
const LAST: &str = "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1";

impl Store {
    pub async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM audit_events ORDER BY id DESC LIMIT $1");
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, AuditEvent>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })?)
    }

    /// The whole chain, oldest first.
    pub async fn audit_chain(&self) -> Result<Vec<AuditEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM audit_events ORDER BY id");
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, AuditEvent>(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await
        })?)
    }

    /// The head of the chain: its last row's id and seal (`0`, genesis when empty).
    pub async fn audit_head(&self) -> Result<(i64, String)> {
        let last: Option<(i64, String)> =
            read_db!(self, |pool, Db| sqlx::query_as::<Db, (i64, String)>(LAST).fetch_optional(pool).await)?;
        Ok(last.unwrap_or_else(|| (0, GENESIS.to_owned())))
    }
}

impl super::Tx {
    /// Appends one event to the chain, sealed with `key`, in the transaction
    /// of the change it records: the change and its entry commit together or
    /// not at all.
    pub async fn audit(&mut self, e: AuditEntry<'_>, key: &AuditKey) -> Result<()> {
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
            let message = canonical(
                id,
                &at,
                e.actor,
                e.action,
                e.target,
                e.request_id,
                e.before.as_ref(),
                e.after.as_ref(),
                &prev,
            );
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
                .bind(key.seal(message.as_bytes()))
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
