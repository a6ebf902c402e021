//! `/api/v1/tokens` and `/api/v1/audit`: admin only. Every change is written
//! to the tamper-evident audit log.

use chrono::{DateTime, Utc};
use hyperfleet_core::{
    TokenId,
    app::Actor,
    auth::{Role, parse_token_lifetime},
    store::{AuditEvent, TokenRecord},
};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};

use crate::{AppState, Tag, auth::AdminAuth, error::ApiResult, request_id::current_request_id};

pub struct TokensApi {
    pub state: AppState,
}

#[derive(Debug, Clone, Object)]
pub struct TokenView {
    pub id: uuid::Uuid,
    pub name: String,
    pub role: Role,
    /// The token's first characters after `hf_` (not secret), to recognise it.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id.0,
            name: t.name,
            role: t.role,
            prefix: t.prefix,
            created_by: t.created_by,
            created_at: t.created_at.0,
            expires_at: t.expires_at.map(|x| x.0),
            last_used_at: t.last_used_at.map(|x| x.0),
            revoked_at: t.revoked_at.map(|x| x.0),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct TokenListView {
    pub items: Vec<TokenView>,
}

#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct TokenCreateRequest {
    /// 1-64 characters of A-Z, a-z, 0-9, `.`, `_`, `-`, `@`; unique.
    #[oai(validator(pattern = "^[A-Za-z0-9._@-]{1,64}$"))]
    pub name: crate::text::Text,
    pub role: Role,
    /// Lifetime such as `30d`, `12h`, `90m` or `3600s`, at most ten years
    /// (`3650d`; 422 `invalid_expires_in` beyond); no expiry when absent.
    #[oai(validator(pattern = "^[1-9][0-9]{0,5}[smhd]$"))]
    pub expires_in: Option<crate::text::Text>,
}

/// The new token: `secret` is shown this once and never stored.
#[derive(Debug, Clone, Object)]
pub struct TokenCreated {
    pub token: TokenView,
    pub secret: String,
}

#[derive(Debug, ApiResponse)]
pub enum TokenCreatedResponse {
    #[oai(status = 201)]
    Created(Json<TokenCreated>, #[oai(header = "Location")] String),
}

#[derive(Debug, Clone, Object)]
pub struct AuditEventView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub before: Option<serde_json::Value>,
    #[oai(skip_serializing_if_is_none)]
    pub after: Option<serde_json::Value>,
    /// SHA-256 over this event and `prev_hash`: the chain `hyperfleet audit verify` walks.
    pub hash: String,
    pub prev_hash: String,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at.0,
            actor: e.actor,
            action: e.action,
            target: e.target,
            request_id: e.request_id,
            before: e.before.map(|j| j.0),
            after: e.after.map(|j| j.0),
            hash: e.hash,
            prev_hash: e.prev_hash,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct AuditListView {
    pub items: Vec<AuditEventView>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Admin")]
impl TokensApi {
    /// List API tokens (never their secrets).
    #[oai(path = "/tokens", method = "get", operation_id = "token_list")]
    async fn list(&self, _auth: AdminAuth) -> ApiResult<Json<TokenListView>> {
        let items = self.state.app.tokens().await?.into_iter().map(TokenView::from).collect();
        Ok(Json(TokenListView { items }))
    }

    /// Create an API token; its secret is in this answer only.
    #[oai(path = "/tokens", method = "post", operation_id = "token_create")]
    async fn create(&self, auth: AdminAuth, body: Json<TokenCreateRequest>) -> ApiResult<TokenCreatedResponse> {
        let actor = &auth.0;
        let role = body.role;
        let expires_in = body.expires_in.as_deref().map(parse_token_lifetime).transpose()?;
        let rid = current_request_id();
        let by = Actor { name: &actor.name, request_id: Some(&rid) };
        let (record, secret) = self.state.app.create_token(by, &body.name, role, expires_in).await?;
        let location = format!("/api/v1/tokens/{}", record.id);
        Ok(TokenCreatedResponse::Created(Json(TokenCreated { token: record.into(), secret }), location))
    }

    /// Revoke an API token (idempotent).
    #[oai(path = "/tokens/:id", method = "delete", operation_id = "token_revoke")]
    async fn revoke(&self, auth: AdminAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<TokenView>> {
        let actor = &auth.0;
        let id = TokenId(id.0);
        let rid = current_request_id();
        let by = Actor { name: &actor.name, request_id: Some(&rid) };
        Ok(Json(self.state.app.revoke_token(by, id).await?.into()))
    }

    /// The audit log of admin changes, newest first.
    #[oai(path = "/audit", method = "get", operation_id = "audit_list")]
    async fn audit(
        &self,
        _auth: AdminAuth,
        /// How many events, 1-1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<AuditListView>> {
        let limit = limit.0.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(hyperfleet_core::Error::invalid("invalid_limit", "`limit` must be 1-1000").into());
        }
        let items = self.state.app.audit_events(limit).await?.into_iter().map(AuditEventView::from).collect();
        Ok(Json(AuditListView { items }))
    }
}
