//! The domain's entry points for what callers ask: each validates, resolves
//! and submits one operation. The API's handlers call these and nothing else.

use serde_json::json;

use crate::{
    Result,
    operation::{NewOperation, NoopParams, OperationKind},
    store::{Store, Submitted},
    vm::{PowerParams, VmAction, VmName},
};

/// Who asked, and under which request.
#[derive(Debug, Clone)]
pub struct Origin {
    pub requested_by: String,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub max_attempts: i32,
}

/// A power action on a VM known to the inventory. The VM's host decides the
/// queue; `host` is needed only when the name exists on several hosts.
#[tracing::instrument(skip(store, origin))]
pub async fn vm_power(
    store: &Store,
    vm: &VmName,
    host: Option<&str>,
    action: VmAction,
    params: PowerParams,
    origin: Origin,
) -> Result<Submitted> {
    params.validate(action)?;
    let record = store.vm(vm.as_str(), host).await?;
    store
        .submit(NewOperation {
            kind: OperationKind::for_vm_action(action),
            host: Some(record.host),
            vm: Some(record.name),
            params: serde_json::to_value(&params).unwrap_or_else(|_| json!({})),
            requested_by: origin.requested_by,
            request_id: origin.request_id,
            idempotency_key: origin.idempotency_key,
            max_attempts: origin.max_attempts,
        })
        .await
}

/// The diagnostic `noop` operation: the same path as every other kind.
pub async fn noop(store: &Store, params: NoopParams, origin: Origin) -> Result<Submitted> {
    params.validate()?;
    store
        .submit(NewOperation {
            kind: OperationKind::Noop,
            host: None,
            vm: None,
            params: serde_json::to_value(&params).unwrap_or_else(|_| json!({})),
            requested_by: origin.requested_by,
            request_id: origin.request_id,
            idempotency_key: origin.idempotency_key,
            max_attempts: origin.max_attempts,
        })
        .await
}

/// A warning for work bound to `host` when its worker is offline: the
/// operation is kept and waits, but the caller should know why it does not move.
pub async fn host_warning(store: &Store, host: &str) -> Result<Option<String>> {
    let now = crate::Timestamp::now();
    Ok(match store.host(host).await {
        Ok(h) if h.online(now) => None,
        Ok(h) => Some(format!(
            "host `{host}` is offline (last heartbeat {}); the operation waits for its worker",
            h.last_heartbeat
        )),
        Err(crate::Error::NotFound { .. }) => {
            Some(format!("host `{host}` has no registered worker; the operation waits for one"))
        }
        Err(e) => return Err(e),
    })
}

/// Waits until operation `id` has finished, or `limit` has passed; returns it as it then is.
pub async fn wait_finished(
    store: &Store,
    id: crate::OperationId,
    limit: std::time::Duration,
) -> Result<crate::operation::Operation> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let op = store.operation(id).await?;
        if op.status.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok(op);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Creates an API token and records it in the audit log; returns the secret once.
pub async fn create_token(
    store: &Store,
    actor: &str,
    request_id: Option<&str>,
    name: &str,
    role: crate::auth::Role,
    expires_in: Option<std::time::Duration>,
) -> Result<(crate::store::TokenRecord, String)> {
    let expires_at = expires_in.map(|d| crate::Timestamp::now().plus(d));
    let (record, secret) = store.create_token(name, role, actor, expires_at).await?;
    store
        .audit(crate::store::AuditEntry {
            actor,
            action: "token.create",
            target: &format!("token/{}", record.id),
            request_id,
            before: None,
            after: Some(json!({"name": record.name, "role": record.role, "expires_at": record.expires_at})),
        })
        .await?;
    Ok((record, secret))
}

/// Revokes an API token and records it in the audit log.
pub async fn revoke_token(
    store: &Store,
    actor: &str,
    request_id: Option<&str>,
    id: crate::TokenId,
) -> Result<crate::store::TokenRecord> {
    let before = store.revoke_token(id).await?;
    store
        .audit(crate::store::AuditEntry {
            actor,
            action: "token.revoke",
            target: &format!("token/{id}"),
            request_id,
            before: Some(json!({"name": before.name, "role": before.role, "revoked_at": before.revoked_at})),
            after: Some(json!({"revoked": true})),
        })
        .await?;
    store.token(id).await
}

/// Records an admin change in the audit log.
pub async fn audit_change(
    store: &Store,
    actor: &str,
    request_id: Option<&str>,
    action: &str,
    target: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<()> {
    store.audit(crate::store::AuditEntry { actor, action, target, request_id, before, after }).await
}

/// Enqueues a `health.run` for `host`, or for every host whose worker has not
/// stopped; returns the operations.
pub async fn health_run(store: &Store, host: Option<&str>, origin: Origin) -> Result<Vec<Submitted>> {
    let hosts: Vec<String> = match host {
        Some(h) => vec![store.host(h).await?.name],
        None => store.hosts().await?.into_iter().filter(|h| h.stopped_at.is_none()).map(|h| h.name).collect(),
    };
    if hosts.is_empty() {
        return Err(crate::Error::conflict("no_hosts", "no worker has registered a host yet"));
    }
    let mut out = Vec::new();
    for h in hosts {
        out.push(
            store
                .submit(NewOperation {
                    kind: OperationKind::HealthRun,
                    host: Some(h),
                    vm: None,
                    params: json!({}),
                    requested_by: origin.requested_by.clone(),
                    request_id: origin.request_id.clone(),
                    idempotency_key: None,
                    max_attempts: origin.max_attempts,
                })
                .await?,
        );
    }
    Ok(out)
}

/// On first start (no schedules at all): health checks every 15 minutes on
/// every host and hourly pruning of the ledger past its retention. (No stub:
/// backup verification gets its schedule when it is real.)
pub async fn ensure_default_schedules(store: &Store) -> Result<()> {
    if !store.schedules().await?.is_empty() {
        return Ok(());
    }
    use crate::{schedule::MissedTicks, store::ScheduleDef};
    let defaults = [
        ("health", "*/15 * * * *", "health.run", MissedTicks::RunOnce, 30),
        ("ledger-prune", "17 * * * *", "ledger.prune", MissedTicks::RunOnce, 60),
    ];
    for (name, cron, kind, missed_ticks, jitter_s) in defaults {
        let def = ScheduleDef {
            name: name.into(),
            cron: cron.into(),
            timezone: "UTC".into(),
            kind: kind.into(),
            params: json!({}),
            host: None,
            enabled: true,
            missed_ticks,
            jitter_s,
        };
        store.create_schedule(&def, "hyperfleet (default)").await?;
    }
    Ok(())
}
