//! Reconciler: every due tick of every enabled schedule becomes its
//! operations, exactly once however many schedulers run (the ledger's
//! `(schedule, fire time)` key arbitrates). It only enqueues.

use hyperfleet_core::{Result, app::App, schedule::plan};

use crate::reconciler::Ran;

pub async fn run(app: &App, me: &str) -> Result<Ran> {
    let store = app.store();
    let now = store.now();
    let mut fired = 0;
    for s in store.due_schedules(now).await? {
        let Some(was_next) = s.next_fire_at else { continue };
        let spec = match s.spec() {
            Ok(spec) => spec,
            Err(e) => {
                tracing::error!(schedule = s.name, error = %e, "stored schedule no longer parses");
                continue;
            }
        };
        let Some(p) = plan(&spec, s.id, was_next, s.missed_ticks, s.jitter_s, now) else { continue };
        if p.missed > 0 {
            tracing::warn!(
                schedule = s.name,
                missed = p.missed,
                policy = s.missed_ticks.as_str(),
                "ticks were missed while no scheduler ran"
            );
        }
        let mut fires = Vec::new();
        for (fire_time, catch_up) in p.fires {
            let fire = app.fire_of(&s, fire_time, catch_up).await?;
            if fire.operations.is_empty() {
                tracing::warn!(schedule = s.name, "no live host to run on; the tick is skipped");
            } else {
                fires.push(fire);
            }
        }
        let mut tx = store.begin().await?;
        fired += tx.record_fires(&s, &fires, was_next, p.next, me, false).await?.len();
        tx.commit().await?;
    }
    Ok(if fired > 0 { Ran::did(fired, format!("fired {fired} operations")) } else { Ran::nothing("nothing due") })
}
