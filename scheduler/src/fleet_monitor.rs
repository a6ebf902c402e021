//! Reconciler: the fleet's facts — workers that stopped beating, queues whose
//! work waits too long — as alerts, decided by `alert::sources::fleet`. It
//! alone owns them (health runs do not measure them): one fact, one alert.

use std::time::Duration;

use hyperfleet_core::{
    Result,
    alert::{
        AlertSource,
        sources::{FleetFacts, WorkerBeat, fleet},
    },
    app::App,
    settings::AlertSettings,
};

use crate::reconciler::Ran;

pub async fn run(app: &App, settings: &AlertSettings) -> Result<Ran> {
    let store = app.store();
    let now = store.now();
    let workers: Vec<WorkerBeat> = store
        .hosts()
        .await?
        .into_iter()
        .map(|h| WorkerBeat {
            online: h.online(now),
            stopped: h.stopped_at.is_some(),
            host: h.name,
            last_heartbeat: h.last_heartbeat,
            heartbeat_s: h.heartbeat_s,
        })
        .collect();
    let runnable = store.oldest_runnable(now).await?;
    let firing = store.firing_keys(AlertSource::Fleet).await?;
    let facts = FleetFacts {
        workers: &workers,
        runnable: &runnable,
        firing: &firing,
        backlog_threshold: Duration::from_secs(settings.backlog_threshold_s),
        now,
    };
    let changes = fleet(&facts);
    if changes.is_empty() {
        return Ok(Ran::nothing(format!("{} workers, {} queues with work: all well", workers.len(), runnable.len())));
    }
    let mut tx = store.begin().await?;
    for change in &changes {
        tx.apply_alert(change).await?;
    }
    tx.commit().await?;
    Ok(Ran::did(changes.len(), format!("{} fleet alerts raised or resolved", changes.len())))
}
