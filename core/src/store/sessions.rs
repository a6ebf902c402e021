//! Dashboard sessions (`ui_sessions`): written at login, read with their
//! token on every dashboard request, deleted at logout, on expiry and when
//! their token is revoked. SQL only: [`crate::session`] decides liveness.

use super::{Store, read_db, tx::on_tx, with_db};
use crate::{Result, Timestamp, auth::Role, ids::TokenId, session::NewSession};

/// A session with the token it is bound to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub token_id: TokenId,
    pub csrf_secret: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub token_name: String,
    pub token_role: Role,
    pub token_expires_at: Option<Timestamp>,
    pub token_revoked_at: Option<Timestamp>,
}

impl Store {
    /// The session stored under `id`, with its token.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, SessionRecord>(
                "SELECT s.id, s.token_id, s.csrf_secret, s.created_at, s.last_seen_at, s.expires_at, \
                 t.name AS token_name, t.role AS token_role, t.expires_at AS token_expires_at, \
                 t.revoked_at AS token_revoked_at \
                 FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Records that the session was used at `now`.
    pub async fn touch_session(&self, id: &str, now: Timestamp) -> Result<()> {
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>("UPDATE ui_sessions SET last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes a session that has ended (idle, expired, or its token gone).
    pub async fn drop_session(&self, id: &str) -> Result<()> {
        with_db!(self, |pool, Db| {
            sqlx::query::<Db>("DELETE FROM ui_sessions WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

impl super::Tx {
    pub async fn insert_session(&mut self, new: &NewSession, token: TokenId, expires_at: Timestamp) -> Result<()> {
        let now = self.now();
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "INSERT INTO ui_sessions (id, token_id, csrf_secret, created_at, last_seen_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $4, $5)",
            )
            .bind(&new.id)
            .bind(token)
            .bind(&new.csrf)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes a session; returns the token it was bound to, if it existed.
    pub async fn delete_session(&mut self, id: &str) -> Result<Option<TokenId>> {
        Ok(on_tx!(self, |c, Db| {
            sqlx::query_scalar::<Db, TokenId>("DELETE FROM ui_sessions WHERE id = $1 RETURNING token_id")
                .bind(id)
                .fetch_optional(&mut *c)
                .await
        })?)
    }

    /// Deletes a token's sessions that ended without being presented again
    /// (past `expires_at`, or last seen at or before `idle_before`), so that
    /// abandoned logins do not pile up.
    pub async fn delete_ended_sessions(&mut self, token: TokenId, idle_before: Timestamp) -> Result<u64> {
        let now = self.now();
        Ok(on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "DELETE FROM ui_sessions WHERE token_id = $1 AND (expires_at <= $2 OR last_seen_at <= $3)",
            )
            .bind(token)
            .bind(now)
            .bind(idle_before)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })?)
    }

    /// Ends every session of a token; returns how many there were.
    pub async fn delete_token_sessions(&mut self, token: TokenId) -> Result<u64> {
        Ok(on_tx!(self, |c, Db| {
            sqlx::query::<Db>("DELETE FROM ui_sessions WHERE token_id = $1")
                .bind(token)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })?)
    }
}
