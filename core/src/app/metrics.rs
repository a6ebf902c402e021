//! `/metrics`: the database's counters and the fleet's current figures, in
//! Prometheus's text format. Every figure is read from the ledger, so any API
//! process answers the same for the whole fleet.

use std::collections::BTreeMap;

use super::App;
use crate::{
    Result,
    backup::verification_state,
    metrics::{BackupFact, Family, backup_families, counter_families, render},
};

fn gauge(name: &'static str, help: &'static str, samples: Vec<(String, f64)>) -> Family {
    Family { name, kind: "gauge", help, samples: samples.into_iter().map(|(l, v)| (name.to_owned(), l, v)).collect() }
}

/// Counts `keys` into labelled samples.
fn counted(keys: impl IntoIterator<Item = String>) -> Vec<(String, f64)> {
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1.0;
    }
    counts.into_iter().collect()
}

impl App {
    /// The metrics page.
    pub async fn metrics_text(&self) -> Result<String> {
        let store = &self.store;
        let now = self.now();
        let mut families = counter_families(&store.metric_counters().await?);

        let active = store.active_operation_counts().await?;
        families.push(gauge(
            "hyperfleet_operations",
            "Operations not finished, by status, kind and host.",
            active
                .into_iter()
                .map(|(status, kind, host, n)| {
                    (format!("status=\"{status}\",kind=\"{kind}\",host=\"{}\"", host.unwrap_or_default()), n as f64)
                })
                .collect(),
        ));
        let runnable = store.oldest_runnable(now).await?;
        families.push(gauge(
            "hyperfleet_queue_oldest_runnable_seconds",
            "Age of the oldest runnable operation, per queue.",
            runnable
                .into_iter()
                .map(|(q, since)| (format!("queue=\"{q}\""), now.millis_since(since) / 1000.0))
                .collect(),
        ));
        let hosts = store.hosts().await?;
        families.push(gauge(
            "hyperfleet_worker_up",
            "1 when the host's worker is heartbeating, else 0.",
            hosts.iter().map(|h| (format!("host=\"{}\"", h.name), f64::from(u8::from(h.online(now))))).collect(),
        ));
        families.push(gauge(
            "hyperfleet_worker_heartbeat_age_seconds",
            "Seconds since the host's worker last beat.",
            hosts
                .iter()
                .map(|h| (format!("host=\"{}\"", h.name), now.millis_since(h.last_heartbeat) / 1000.0))
                .collect(),
        ));
        let vms = store.vms().await?;
        families.push(gauge(
            "hyperfleet_vms",
            "VMs in the inventory, by host and state.",
            counted(vms.iter().map(|v| format!("host=\"{}\",state=\"{}\"", v.host, v.state.as_str()))),
        ));
        let checks = store.health_states(None).await?;
        families.push(gauge(
            "hyperfleet_health_checks",
            "Health checks by host and current status.",
            counted(checks.iter().map(|c| format!("host=\"{}\",status=\"{}\"", c.host, c.status.as_str()))),
        ));
        let firing = store.firing_alert_counts().await?;
        families.push(gauge(
            "hyperfleet_alerts_firing",
            "Firing alerts by severity.",
            firing.into_iter().map(|(s, n)| (format!("severity=\"{s}\""), n as f64)).collect(),
        ));
        let schedules = store.schedules().await?;
        let at = |t: crate::Timestamp| t.0.timestamp_millis() as f64 / 1000.0;
        families.push(gauge(
            "hyperfleet_schedule_next_fire_timestamp_seconds",
            "When each enabled schedule fires next (Unix time).",
            schedules
                .iter()
                .filter_map(|s| s.next_fire_at.map(|t| (format!("schedule=\"{}\"", s.name), at(t))))
                .collect(),
        ));
        families.push(gauge(
            "hyperfleet_schedule_last_fire_timestamp_seconds",
            "When each schedule last fired (Unix time).",
            schedules
                .iter()
                .filter_map(|s| s.last_fire_at.map(|t| (format!("schedule=\"{}\"", s.name), at(t))))
                .collect(),
        ));
        let backups: Vec<BackupFact> = store
            .backup_metric_rows()
            .await?
            .into_iter()
            .map(|b| BackupFact {
                verification: verification_state(b.last_result.zip(b.last_at), now, self.reverify_after_days),
                host: b.host,
                vm: b.vm,
                state: b.state,
                finished_at: b.finished_at,
            })
            .collect();
        families.extend(backup_families(&backups, now));
        Ok(render(&families))
    }
}
