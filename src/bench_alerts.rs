//! `hyperfleet bench --alerts N`: the alert pipeline end to end — raise →
//! router (scheduler) → `alert.deliver` operation (worker) → a webhook
//! receiver on loopback — with figures read from the database's timestamps.

use std::time::{Duration, Instant};

use hyperfleet_core::{
    alert::{AlertSource, NewAlert, Severity},
    settings::Settings,
};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct AlertBenchReport {
    pub alerts: usize,
    pub concurrency: usize,
    /// Raised and delivered per second, over the whole run.
    pub delivered_per_sec: f64,
    pub raise_per_sec: f64,
    /// One alert at a time into an idle pipeline: raise → delivered and recorded.
    pub idle_delivery_p50_ms: f64,
    pub idle_delivery_p99_ms: f64,
    pub idle_samples: usize,
    /// Raise → delivered and recorded, during the burst (includes waiting in line).
    pub delivery_p50_ms: f64,
    pub delivery_p99_ms: f64,
    pub receiver_requests: usize,
    pub peak_rss_mb: f64,
}

pub async fn run(database: &str, alerts: usize, concurrency: usize) -> anyhow::Result<AlertBenchReport> {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let receiver = poem::endpoint::make_sync(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        "ok"
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let stop = tokio_util::sync::CancellationToken::new();
    let server_stop = stop.clone();
    tokio::spawn(async move {
        let app = poem::Route::new().at("/*path", receiver);
        poem::Server::new(poem::listener::TcpListener::bind(format!("127.0.0.1:{port}")))
            .run_with_graceful_shutdown(app, server_stop.cancelled_owned(), None)
            .await
    });
    let config = format!(
        "[[alerts.channels]]\nname = \"bench\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"bench\"\n"
    );
    let dir = std::env::temp_dir().join(format!("hyperfleet-bench-{}.toml", std::process::id()));
    std::fs::write(&dir, config)?;
    let loaded = Settings::load(Some(&dir), std::iter::empty());
    std::fs::remove_file(&dir)?;
    let settings = crate::bench::bench_settings(loaded?, database, concurrency)?;
    let components = crate::Components { api: false, worker: true, scheduler: true };
    let running = crate::start(
        &settings,
        components,
        crate::Bootstrap { migrate: true, first_admin_token: false, ..Default::default() },
    )
    .await?;
    let store = running.store.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let run_id = ulid::Ulid::new();
    let idle_actor = format!("bench-alerts-idle-{run_id}");
    const IDLE_SAMPLES: usize = 50;
    for i in 0..IDLE_SAMPLES {
        let mut alert = NewAlert::system(AlertSource::Manual, Severity::Warning, format!("idle {i}"), "m");
        alert.actor = idle_actor.clone();
        store.raise_alert(&alert).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.alert_delivery_latencies_ms(&idle_actor).await?.len() <= i {
            anyhow::ensure!(Instant::now() < deadline, "an idle alert was not delivered within 30 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let idle = store.alert_delivery_latencies_ms(&idle_actor).await?;

    let actor = format!("bench-alerts-{run_id}");
    let started = Instant::now();
    let per_task = alerts.div_ceil(concurrency.max(1));
    let mut raisers = tokio::task::JoinSet::new();
    for i in 0..concurrency.max(1) {
        let store = store.clone();
        let actor = actor.clone();
        let n = per_task.min(alerts.saturating_sub(i * per_task));
        raisers.spawn(async move {
            for j in 0..n {
                let mut alert = NewAlert::system(AlertSource::Manual, Severity::Warning, format!("bench {i}-{j}"), "m");
                alert.actor = actor.clone();
                store.raise_alert(&alert).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = raisers.join_next().await {
        r??;
    }
    let raised_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    let latencies = loop {
        let l = store.alert_delivery_latencies_ms(&actor).await?;
        if l.len() >= alerts {
            break l;
        }
        anyhow::ensure!(Instant::now() < deadline, "only {} of {alerts} alerts delivered", l.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let elapsed = started.elapsed();
    running.stop().await?;
    stop.cancel();
    Ok(AlertBenchReport {
        alerts,
        concurrency,
        delivered_per_sec: alerts as f64 / elapsed.as_secs_f64(),
        raise_per_sec: alerts as f64 / raised_in.as_secs_f64(),
        idle_delivery_p50_ms: crate::bench::percentile(&idle, 50.0),
        idle_delivery_p99_ms: crate::bench::percentile(&idle, 99.0),
        idle_samples: idle.len(),
        delivery_p50_ms: crate::bench::percentile(&latencies, 50.0),
        delivery_p99_ms: crate::bench::percentile(&latencies, 99.0),
        receiver_requests: received.load(Ordering::Relaxed),
        peak_rss_mb: crate::bench::peak_rss_mb(),
    })
}
