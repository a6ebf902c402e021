//! The router against many regex silences: `N` silences of 16 regular
//! expression matchers each, then one alert event at a time routed, timed per
//! event. Every silence is evaluated in full (its last matcher never matches),
//! so each event meets `16 × N` patterns. Routing is timed from the caller's
//! side of the `route_alerts` reconciler: reading the silences, the write transaction, the
//! commit. Run it with `hyperfleet bench-alerts --database URL --silences N --alerts EVENTS`.

use std::time::{Duration, Instant};

use hyperfleet_core::{
    Timestamp,
    alert::{AlertSource, MatchOp, Matcher, NewAlert, NewSilence, Severity},
    app::{Actor, App},
    settings::Settings,
    store::Store,
};
use serde::Serialize;

/// Matchers per silence, the most a silence takes.
const MATCHERS: usize = 16;

#[derive(Debug, Serialize)]
pub struct SilenceBenchReport {
    pub silences: usize,
    pub matchers_per_silence: usize,
    /// One of the heavy matchers, as created (each silence's differ by a suffix).
    pub heavy_matcher: String,
    /// `host !~ \w{100}` (over 4 MiB compiled) is refused with `invalid_matcher`.
    pub unicode_w100_refused: bool,
    /// Validate and store one silence (its patterns compiled once, here).
    pub create_p50_ms: f64,
    pub create_p99_ms: f64,
    pub events: usize,
    /// Route one alert event against every silence and the channel.
    pub route_p50_ms: f64,
    pub route_p99_ms: f64,
    pub route_max_ms: f64,
    pub peak_rss_mb: f64,
}

pub async fn run(database: &str, silences: usize, events: usize) -> anyhow::Result<SilenceBenchReport> {
    // A channel that is never called: deliveries stay queued, only routing is measured.
    let config = "[[alerts.channels]]\nname = \"bench\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n";
    let file = std::env::temp_dir().join(format!("hyperfleet-bench-silences-{}.toml", std::process::id()));
    std::fs::write(&file, config)?;
    let loaded = Settings::load(Some(&file), std::iter::empty());
    std::fs::remove_file(&file)?;
    let settings = crate::bench::bench_settings(loaded?, database, 1)?;
    let store = Store::connect(&settings.database_url(), settings.database.pool()).await?;
    store.migrate().await?;
    // A throwaway key: creating silences writes (sealed) audit entries.
    let key = hyperfleet_core::audit::AuditKey::new(ulid::Ulid::new().to_string().into_bytes())?;
    let app = App::new(store.clone()).with_audit_key(key);
    let actor = Actor { name: "bench", request_id: None };
    let route = || hyperfleet_scheduler::route_alerts::run(&app, &settings.alerts);

    let run_id = ulid::Ulid::new();
    let heavy = |i: usize, j: usize| format!("[A-Za-z0-9_]{{100}}|x-{i}-{j}");
    let mut created = Vec::with_capacity(silences);
    let mut create_ms = Vec::with_capacity(silences);
    for i in 0..silences {
        let started = Instant::now();
        let mut matchers = (0..MATCHERS - 1)
            .map(|j| Matcher::new("host", MatchOp::NotRe, heavy(i, j)))
            .collect::<hyperfleet_core::Result<Vec<_>>>()?;
        matchers.push(Matcher::new("title", MatchOp::Re, format!("never-{run_id}-{i}-.*"))?);
        let new = NewSilence {
            matchers,
            starts_at: None,
            ends_at: Timestamp::now().plus(Duration::from_secs(3600)),
            comment: "bench".into(),
            created_by: format!("bench-silences-{run_id}"),
        };
        new.validate(Timestamp::now())?;
        created.push(app.create_silence(actor, &new).await?.id);
        create_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    // Whatever an earlier run left unrouted goes first, untimed.
    while route().await?.changed > 0 {}
    let mut route_ms = Vec::with_capacity(events);
    for e in 0..events {
        let mut alert = NewAlert::system(AlertSource::Manual, Severity::Warning, format!("bench {run_id} {e}"), "m")
            .on_host(Some("hv1"));
        alert.actor = format!("bench-silences-{run_id}");
        store.raise_alert(&alert).await?;
        let started = Instant::now();
        let routed = route().await?.changed;
        route_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(routed == 1, "expected one event to route, routed {routed}");
    }
    for id in created {
        app.expire_silence(actor, id).await?;
    }
    Ok(SilenceBenchReport {
        silences,
        matchers_per_silence: MATCHERS,
        heavy_matcher: format!("host !~ {}", heavy(0, 0)),
        unicode_w100_refused: Matcher::new("host", MatchOp::NotRe, r"\w{100}").is_err(),
        create_p50_ms: crate::bench::percentile(&create_ms, 50.0),
        create_p99_ms: crate::bench::percentile(&create_ms, 99.0),
        events,
        route_p50_ms: crate::bench::percentile(&route_ms, 50.0),
        route_p99_ms: crate::bench::percentile(&route_ms, 99.0),
        route_max_ms: crate::bench::percentile(&route_ms, 100.0),
        peak_rss_mb: crate::bench::peak_rss_mb(),
    })
}
