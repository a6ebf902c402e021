//! Dashboard login and logout: an API token becomes a session bound to it.
//! Login and logout are audited like every admin change; a session is
//! checked against its token on every request, so revoking or expiring the
//! token ends it.

use serde_json::json;

use super::{Actor, App};
use crate::{
    Error, Result,
    auth::Principal,
    session::{Liveness, NewSession, session_id},
};

/// A live session: who it speaks for and the CSRF secret its forms carry.
#[derive(Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("principal", &self.principal).finish_non_exhaustive()
    }
}

fn ended() -> Error {
    Error::Unauthenticated("no session, or it has ended: log in again".into())
}

impl App {
    /// Logs in with an API token: a new session bound to it, audited.
    /// `Unauthenticated` for an invalid, expired or revoked token.
    pub async fn login(&self, presented: &str, request_id: Option<&str>) -> Result<(Principal, NewSession)> {
        let principal = self.store.authenticate(presented).await?;
        let token = crate::TokenId::parse(&principal.token_id)?;
        let new = NewSession::generate();
        let mut tx = self.store.begin().await?;
        let now = tx.now();
        let expires_at = now.plus(self.sessions.absolute);
        tx.delete_ended_sessions(token, now.minus(self.sessions.idle)).await?;
        tx.insert_session(&new, token, expires_at).await?;
        let actor = Actor { name: &principal.name, request_id };
        let after = json!({"expires_at": expires_at, "role": principal.role});
        actor.audit(&mut tx, self.audit_key()?, "session.login", &format!("token/{token}"), None, Some(after)).await?;
        tx.commit().await?;
        Ok((principal, new))
    }

    /// The live session whose cookie is `cookie`; a session that has ended is
    /// deleted and answered `Unauthenticated`.
    pub async fn session(&self, cookie: &str) -> Result<Session> {
        let id = session_id(cookie);
        let record = self.store.session(&id).await?.ok_or_else(ended)?;
        let now = self.now();
        let token_dead = record.token_revoked_at.is_some() || record.token_expires_at.is_some_and(|e| e <= now);
        if token_dead || self.sessions.liveness(record.last_seen_at, record.expires_at, now) != Liveness::Live {
            self.store.drop_session(&id).await?;
            return Err(ended());
        }
        if record.last_seen_at.plus(crate::session::TOUCH_GRANULARITY) < now {
            self.store.touch_session(&id, now).await?;
        }
        let principal =
            Principal { token_id: record.token_id.to_string(), name: record.token_name, role: record.token_role };
        Ok(Session { principal, csrf: record.csrf_secret })
    }

    /// Ends the session whose cookie is `cookie` (idempotent), audited.
    pub async fn logout(&self, cookie: &str, request_id: Option<&str>) -> Result<()> {
        let id = session_id(cookie);
        let Some(record) = self.store.session(&id).await? else { return Ok(()) };
        let mut tx = self.store.begin().await?;
        if tx.delete_session(&id).await?.is_some() {
            let actor = Actor { name: &record.token_name, request_id };
            let target = format!("token/{}", record.token_id);
            actor.audit(&mut tx, self.audit_key()?, "session.logout", &target, None, None).await?;
        }
        tx.commit().await
    }
}
