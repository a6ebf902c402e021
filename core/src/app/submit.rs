//! Submitting work: each use case validates, resolves and records operations.

use serde_json::json;

use super::App;
use crate::{
    Error, OperationId, Result,
    operation::{NewOperation, NoopParams, Operation, OperationKind, fan_out, fans_out, scoped_idempotency_key},
    schedule::{MissedTicks, ScheduleDef, schedulable},
    store::{Fire, ScheduleRecord, Submitted},
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

impl Origin {
    pub(super) fn operation(
        &self,
        kind: OperationKind,
        host: Option<String>,
        vm: Option<String>,
        params: serde_json::Value,
    ) -> NewOperation {
        NewOperation {
            kind,
            host,
            vm,
            params,
            requested_by: self.requested_by.clone(),
            request_id: self.request_id.clone(),
            idempotency_key: self.idempotency_key.as_deref().map(|k| scoped_idempotency_key(&self.requested_by, k)),
            max_attempts: self.max_attempts,
        }
    }
}

impl App {
    /// A power action on a VM known to the inventory. The VM's host decides the
    /// queue; `host` is needed only when the name exists on several hosts.
    #[tracing::instrument(skip(self, origin))]
    pub async fn vm_power(
        &self,
        vm: &VmName,
        host: Option<&str>,
        action: VmAction,
        params: PowerParams,
        origin: Origin,
    ) -> Result<Submitted> {
        params.validate(action)?;
        let record = self.store.vm(vm.as_str(), host).await?;
        let params = serde_json::to_value(&params).map_err(Error::internal)?;
        let new = origin.operation(OperationKind::for_vm_action(action), Some(record.host), Some(record.name), params);
        self.store.submit(new).await
    }

    /// The diagnostic `noop` operation: the same path as every other kind.
    pub async fn noop(&self, params: NoopParams, origin: Origin) -> Result<Submitted> {
        params.validate()?;
        let params = serde_json::to_value(&params).map_err(Error::internal)?;
        self.store.submit(origin.operation(OperationKind::Noop, None, None, params)).await
    }

    /// Enqueues a `health.run` for `host`, or for every host whose worker has
    /// not stopped (the fan-out rule); returns the operations.
    pub async fn request_health_runs(&self, host: Option<&str>, origin: Origin) -> Result<Vec<Submitted>> {
        if let Some(h) = host {
            self.store.host(h).await?;
        }
        let targets = fan_out(OperationKind::HealthRun, host, &self.live_hosts().await?);
        if targets.is_empty() {
            return Err(Error::conflict("no_hosts", "no worker has registered a host yet"));
        }
        let origin = Origin { idempotency_key: None, ..origin };
        let mut out = Vec::new();
        for h in targets {
            out.push(self.store.submit(origin.operation(OperationKind::HealthRun, h, None, json!({}))).await?);
        }
        Ok(out)
    }

    /// Queues a health run for `host` whether or not its worker has registered
    /// yet (the run waits for it): what `up` does at start.
    pub async fn queue_health_run(&self, host: &str, origin: Origin) -> Result<Submitted> {
        let host = crate::vm::HostName::parse(host)?.into_string();
        self.store.submit(origin.operation(OperationKind::HealthRun, Some(host), None, json!({}))).await
    }

    /// Hosts whose worker has not stopped.
    pub(crate) async fn live_hosts(&self) -> Result<Vec<String>> {
        Ok(self.store.hosts().await?.into_iter().filter(|h| h.stopped_at.is_none()).map(|h| h.name).collect())
    }

    /// What one tick of `s` enqueues: one operation per target of the fan-out rule.
    pub async fn fire_of(&self, s: &ScheduleRecord, fire_time: crate::Timestamp, catch_up: bool) -> Result<Fire> {
        let kind = schedulable(s.kind.as_str())?;
        let origin = Origin {
            requested_by: format!("schedule:{}", s.name),
            request_id: None,
            idempotency_key: None,
            max_attempts: NewOperation::DEFAULT_MAX_ATTEMPTS,
        };
        let operations = match self.backup_target(kind, s.host.as_deref(), &s.params.0).await? {
            // A backup runs on its VM's host, in the VM's turn.
            Some((host, vm)) => vec![origin.operation(kind, Some(host), Some(vm), s.params.0.clone())],
            None => {
                let live = if fans_out(kind, s.host.as_deref()) { self.live_hosts().await? } else { Vec::new() };
                let targets = fan_out(kind, s.host.as_deref(), &live);
                targets.into_iter().map(|h| origin.operation(kind, h, None, s.params.0.clone())).collect()
            }
        };
        Ok(Fire { fire_time, catch_up, operations })
    }

    /// Fires schedule `id` now, outside its cron times (recorded as manual).
    pub async fn trigger_schedule(&self, id: crate::ScheduleId, actor: &str) -> Result<Operation> {
        let s = self.store.schedule(id).await?;
        let now = self.now();
        let fire = self.fire_of(&s, now, false).await?;
        if fire.operations.is_empty() {
            return Err(Error::conflict("no_hosts", "no worker has registered a host yet"));
        }
        let mut tx = self.store.begin().await?;
        let created = tx.record_fires(&s, &[fire], s.next_fire_at.unwrap_or(now), s.next_fire_at, actor, true).await?;
        tx.commit().await?;
        let first = created.first().copied();
        let first = first.ok_or_else(|| Error::conflict("already_fired", "that instant was already fired"))?;
        self.store.operation(first).await
    }

    /// A warning for work bound to `host` when its worker is offline: the
    /// operation is kept and waits, but the caller should know why it does not move.
    pub async fn host_warning(&self, host: &str) -> Result<Option<String>> {
        let now = self.now();
        Ok(match self.store.host(host).await {
            Ok(h) if h.online(now) => None,
            Ok(h) => Some(format!(
                "host `{host}` is offline (last heartbeat {}); the operation waits for its worker",
                h.last_heartbeat
            )),
            Err(Error::NotFound { .. }) => {
                Some(format!("host `{host}` has no registered worker; the operation waits for one"))
            }
            Err(e) => return Err(e),
        })
    }

    /// Waits until operation `id` has finished, or `limit` has passed; returns it as it then is.
    pub async fn wait_finished(&self, id: OperationId, limit: std::time::Duration) -> Result<Operation> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let op = self.store.operation(id).await?;
            if op.status.is_terminal() || tokio::time::Instant::now() >= deadline {
                return Ok(op);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// On first start (no schedules at all): health checks every 15 minutes on
    /// every host, hourly pruning of the ledger past its retention, and weekly
    /// verification of every backup never verified or outdated, on every host.
    pub async fn ensure_default_schedules(&self) -> Result<()> {
        if !self.store.schedules().await?.is_empty() {
            return Ok(());
        }
        let defaults = [
            ("health", "*/15 * * * *", "health.run", MissedTicks::RunOnce, 30),
            ("ledger-prune", "17 * * * *", "ledger.prune", MissedTicks::RunOnce, 60),
            ("backup-verify", "30 2 * * SUN", "backup.verify", MissedTicks::RunOnce, 600),
        ];
        let actor = super::admin::Actor { name: "hyperfleet (default)", request_id: None };
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
            self.create_schedule(actor, &def).await?;
        }
        Ok(())
    }
}

impl App {
    /// Test notifications through `channels`, outside any alert and policy.
    /// Returns (channel, notification, delivery operation) per channel.
    pub async fn test_notifications(
        &self,
        channels: &[&str],
        requested_by: &str,
        max_attempts: i32,
    ) -> Result<Vec<(String, crate::NotificationId, OperationId)>> {
        use crate::{
            alert::{DeliverParams, NotifyEvent},
            store::{Links, NewNotification},
        };
        let mut tx = self.store.begin().await?;
        let mut out = Vec::new();
        for channel in channels {
            let id = crate::NotificationId::new();
            let params =
                DeliverParams { notification_id: id, channel: (*channel).to_owned(), event: NotifyEvent::Test };
            let origin =
                Origin { requested_by: requested_by.to_owned(), request_id: None, idempotency_key: None, max_attempts };
            let params = serde_json::to_value(&params).map_err(Error::internal)?;
            let op = tx
                .insert_operation(&origin.operation(OperationKind::AlertDeliver, None, None, params), Links::default())
                .await?;
            let n = NewNotification {
                id,
                alert: None,
                event_id: None,
                channel,
                event: NotifyEvent::Test,
                reason: None,
                silence: None,
                operation: Some(op.id),
            };
            tx.insert_notification(&n).await?;
            out.push(((*channel).to_owned(), id, op.id));
        }
        tx.commit().await?;
        Ok(out)
    }
}
