//! Admin changes — tokens, schedules, silences — each written with its audit
//! entry in one transaction: a change that commits is audited, and an audit
//! entry never describes a change that did not happen.

use serde_json::{Value, json};

use super::App;
use crate::{
    Error, Result, ScheduleId, SilenceId, TokenId,
    alert::{NewSilence, Silence},
    audit::AuditKey,
    auth::Role,
    schedule::ScheduleDef,
    store::{AuditEntry, ScheduleRecord, TokenRecord, Tx},
};

/// Who changed something, under which request.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub request_id: Option<&'a str>,
}

impl Actor<'_> {
    /// Appends this actor's entry for a change, sealed with `key`, in `tx`.
    pub(super) async fn audit(
        &self,
        tx: &mut Tx,
        key: &AuditKey,
        action: &str,
        target: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<()> {
        tx.audit(AuditEntry { actor: self.name, action, target, request_id: self.request_id, before, after }, key).await
    }
}

fn token_name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

fn schedule_summary(s: &ScheduleRecord) -> Value {
    json!({"name": s.name, "cron": s.cron, "timezone": s.timezone, "kind": s.kind, "params": s.params.0,
           "host": s.host, "enabled": s.enabled, "missed_ticks": s.missed_ticks, "jitter_s": s.jitter_s})
}

fn silence_summary(s: &Silence) -> Value {
    json!({ "matchers": s.matchers, "starts_at": s.starts_at, "ends_at": s.ends_at, "comment": s.comment })
}

impl App {
    /// Creates an API token; returns the secret, shown once.
    pub async fn create_token(
        &self,
        actor: Actor<'_>,
        name: &str,
        role: Role,
        expires_in: Option<std::time::Duration>,
    ) -> Result<(TokenRecord, String)> {
        if !token_name_ok(name) {
            return Err(Error::invalid(
                "invalid_token_name",
                "token names are 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-', '@'",
            ));
        }
        let expires_at = expires_in.map(|d| self.now().plus(d));
        let mut tx = self.store.begin().await?;
        let (record, secret) = tx.create_token(name, role, actor.name, expires_at).await?;
        let after = json!({"name": record.name, "role": record.role, "expires_at": record.expires_at});
        actor
            .audit(&mut tx, self.audit_key()?, "token.create", &format!("token/{}", record.id), None, Some(after))
            .await?;
        tx.commit().await?;
        Ok((record, secret))
    }

    /// Revokes an API token (idempotent) and ends its dashboard sessions.
    pub async fn revoke_token(&self, actor: Actor<'_>, id: TokenId) -> Result<TokenRecord> {
        let mut tx = self.store.begin().await?;
        let before = tx.revoke_token(id).await?;
        tx.delete_token_sessions(id).await?;
        let was = json!({"name": before.name, "role": before.role, "revoked_at": before.revoked_at});
        actor
            .audit(
                &mut tx,
                self.audit_key()?,
                "token.revoke",
                &format!("token/{id}"),
                Some(was),
                Some(json!({"revoked": true})),
            )
            .await?;
        tx.commit().await?;
        self.store.token(id).await
    }

    pub async fn create_schedule(&self, actor: Actor<'_>, def: &ScheduleDef) -> Result<ScheduleRecord> {
        let spec = def.check()?;
        let next = def.enabled.then(|| spec.next_after(self.now())).flatten();
        let mut tx = self.store.begin().await?;
        let s = tx.save_schedule(ScheduleId::new(), def, &spec, next, actor.name).await?;
        actor
            .audit(
                &mut tx,
                self.audit_key()?,
                "schedule.create",
                &format!("schedule/{}", s.id),
                None,
                Some(schedule_summary(&s)),
            )
            .await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Replaces a schedule's definition; its next fire is recomputed from now.
    pub async fn update_schedule(&self, actor: Actor<'_>, id: ScheduleId, def: &ScheduleDef) -> Result<ScheduleRecord> {
        let spec = def.check()?;
        let before = self.store.schedule(id).await?;
        let next = def.enabled.then(|| spec.next_after(self.now())).flatten();
        let mut tx = self.store.begin().await?;
        let after = tx.save_schedule(id, def, &spec, next, &before.created_by).await?;
        let (was, now) = (Some(schedule_summary(&before)), Some(schedule_summary(&after)));
        actor.audit(&mut tx, self.audit_key()?, "schedule.update", &format!("schedule/{id}"), was, now).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Deletes a schedule (its fired operations stay in the ledger); returns it as it was.
    pub async fn delete_schedule(&self, actor: Actor<'_>, id: ScheduleId) -> Result<ScheduleRecord> {
        let before = self.store.schedule(id).await?;
        let mut tx = self.store.begin().await?;
        tx.delete_schedule(id).await?;
        actor
            .audit(
                &mut tx,
                self.audit_key()?,
                "schedule.delete",
                &format!("schedule/{id}"),
                Some(schedule_summary(&before)),
                None,
            )
            .await?;
        tx.commit().await?;
        Ok(before)
    }

    pub async fn create_silence(&self, actor: Actor<'_>, new: &NewSilence) -> Result<Silence> {
        new.validate(self.now())?;
        let mut tx = self.store.begin().await?;
        let s = tx.create_silence(new).await?;
        actor
            .audit(
                &mut tx,
                self.audit_key()?,
                "silence.create",
                &format!("silence/{}", s.id),
                None,
                Some(silence_summary(&s)),
            )
            .await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Ends a silence now (it stays in the history).
    pub async fn expire_silence(&self, actor: Actor<'_>, id: SilenceId) -> Result<Silence> {
        let mut tx = self.store.begin().await?;
        let s = tx.expire_silence(id).await?;
        actor
            .audit(
                &mut tx,
                self.audit_key()?,
                "silence.expire",
                &format!("silence/{id}"),
                None,
                Some(silence_summary(&s)),
            )
            .await?;
        tx.commit().await?;
        Ok(s)
    }
}
