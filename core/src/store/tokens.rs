//! API tokens: created (the secret returned once), listed, revoked, and
//! resolved from a presented bearer token to a [`Principal`].

use serde::Serialize;

use super::{Store, read_db, tx::on_tx, with_db};
use crate::{
    Error, Result, Timestamp,
    auth::{self, Principal, Role},
    ids::TokenId,
};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenRecord {
    pub id: TokenId,
    pub name: String,
    pub role: crate::auth::Role,
    /// The non-secret start of the token, to recognise it.
    pub prefix: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

const TOKEN_COLUMNS: &str = "id, name, role, prefix, created_by, created_at, expires_at, last_used_at, revoked_at";

/// `last_used_at` is written at most this often per token, not on every request.
const LAST_USED_GRANULARITY: std::time::Duration = std::time::Duration::from_secs(60);

impl Store {
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, name");
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, TokenRecord>(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await
        })?)
    }

    pub async fn token(&self, id: TokenId) -> Result<TokenRecord> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let found: Option<TokenRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, TokenRecord>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await
        })?;
        found.ok_or_else(|| Error::not_found("token_not_found", format!("token {id}")))
    }

    pub async fn token_count(&self) -> Result<i64> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, i64>("SELECT COUNT(*) FROM api_tokens").fetch_one(pool).await
        })?)
    }

    /// Resolves a presented bearer token; `Unauthenticated` for anything else.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal> {
        let denied = || Error::Unauthenticated("invalid, expired or revoked token".into());
        let prefix = auth::prefix_of(presented).ok_or_else(denied)?;
        type Row = (TokenId, String, String, String, Option<Timestamp>, Option<Timestamp>, Option<Timestamp>);
        let row: Option<Row> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, Row>(
                "SELECT id, name, role, token_hash, expires_at, revoked_at, last_used_at FROM api_tokens WHERE prefix = $1",
            )
            .bind(prefix)
            .fetch_optional(pool)
            .await
        })?;
        let (id, name, role, stored, expires_at, revoked_at, last_used) = row.ok_or_else(denied)?;
        let now = self.now();
        if !auth::digests_match(&auth::hash(presented), &stored)
            || revoked_at.is_some()
            || expires_at.is_some_and(|e| e <= now)
        {
            return Err(denied());
        }
        if last_used.is_none_or(|t| t.plus(LAST_USED_GRANULARITY) < now) {
            with_db!(self, |pool, Db| {
                sqlx::query::<Db>("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        Ok(Principal { token_id: id.to_string(), name, role: Role::parse(&role)? })
    }
}

impl super::Tx {
    /// Creates a token; the returned secret is shown once and never stored.
    pub async fn create_token(
        &mut self,
        name: &str,
        role: Role,
        created_by: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(TokenRecord, String)> {
        let secret = auth::generate();
        let id = TokenId::new();
        let now = self.now();
        let sql = format!(
            "INSERT INTO api_tokens (id, name, role, prefix, token_hash, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TOKEN_COLUMNS}"
        );
        let inserted = on_tx!(self, |c, Db| {
            sqlx::query_as::<Db, TokenRecord>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(name)
                .bind(role.as_str())
                .bind(&secret.prefix)
                .bind(&secret.hash)
                .bind(created_by)
                .bind(now)
                .bind(expires_at)
                .fetch_one(&mut *c)
                .await
        });
        match inserted {
            Ok(record) => Ok((record, secret.secret)),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(Error::conflict("token_name_taken", format!("a token named `{name}` already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes a token (idempotent); returns it as it was before.
    pub async fn revoke_token(&mut self, id: TokenId) -> Result<TokenRecord> {
        let now = self.now();
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let before: Option<TokenRecord> = on_tx!(self, |c, Db| {
            sqlx::query_as::<Db, TokenRecord>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await
        })?;
        let before = before.ok_or_else(|| Error::not_found("token_not_found", format!("token {id}")))?;
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(before)
    }
}
