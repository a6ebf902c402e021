//! The fleet monitor (run by the scheduler): offline workers and backlog as alerts.

use super::{Store, read_db};
use crate::{
    Result, Timestamp,
    alert::{AlertSource, NewAlert, Severity},
    settings::AlertSettings,
};

impl Store {
    /// The fleet monitor: raises `worker offline` for hosts whose worker stopped
    /// beating (resolved when it beats again or stops cleanly) and `backlog`
    /// for queues whose oldest runnable work is older than the threshold.
    pub async fn monitor_fleet(&self, settings: &AlertSettings) -> Result<()> {
        let now = Timestamp::now();
        // Resolve only what fires: most ticks then write nothing.
        let firing: Vec<String> = read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, String>(
                "SELECT dedup_key FROM alerts WHERE status = 'firing' AND source = 'fleet'",
            )
            .fetch_all(pool)
            .await
        })?;
        for host in self.hosts().await? {
            let key = format!("fleet:{}:worker-offline", host.name);
            if host.stopped_at.is_none() && !host.online(now) {
                let alert = NewAlert::system(
                    AlertSource::Fleet,
                    Severity::Critical,
                    format!("Worker offline on {}", host.name),
                    format!(
                        "The worker of host {} has not sent a heartbeat since {} (every {} s expected); \
                         operations for this host wait.",
                        host.name, host.last_heartbeat, host.heartbeat_s
                    ),
                )
                .on_host(Some(&host.name))
                .dedup(key);
                self.raise_alert(&alert).await?;
            } else if firing.contains(&key) {
                let why = if host.stopped_at.is_some() { "the worker stopped cleanly" } else { "the worker is back" };
                self.resolve_alert_key(&key, "hyperfleet", why).await?;
            }
        }
        let runnable: Vec<(String, Timestamp)> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, (String, Timestamp)>(
                "SELECT queue, MIN(COALESCE(next_attempt_at, created_at)) FROM operations \
                 WHERE status = 'queued' OR (status = 'retrying' AND next_attempt_at <= $1) GROUP BY queue",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        let threshold = std::time::Duration::from_secs(settings.backlog_threshold_s);

        for (queue, since) in &runnable {
            let key = format!("fleet:backlog:{queue}");
            if since.plus(threshold) <= now {
                let age_s = now.millis_since(*since) / 1000.0;
                let alert = NewAlert::system(
                    AlertSource::Fleet,
                    Severity::Warning,
                    format!("Backlog on {queue}"),
                    format!(
                        "Runnable work on queue {queue} has waited {age_s:.0} s (threshold {} s).",
                        threshold.as_secs()
                    ),
                )
                .label("queue", queue.clone())
                .dedup(key);
                self.raise_alert(&alert).await?;
            }
        }
        for key in firing.iter().filter(|k| k.starts_with("fleet:backlog:")) {
            let cleared = runnable
                .iter()
                .find(|(q, _)| *key == format!("fleet:backlog:{q}"))
                .is_none_or(|(_, since)| since.plus(threshold) > now);
            if cleared {
                self.resolve_alert_key(key, "hyperfleet", "the backlog cleared").await?;
            }
        }
        Ok(())
    }
}
