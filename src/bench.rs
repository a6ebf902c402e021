//! `hyperfleet bench`: submits `noop` operations through the same submit path
//! the API uses, runs them on an in-process worker, and reports figures from
//! the ledger itself (submit → first attempt start). Not a test: it prints.

use std::time::{Duration, Instant};

use anyhow::Context;
use hyperfleet_core::{
    app::{App, Origin},
    operation::NoopParams,
    settings::Settings,
    store::Store,
};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub database: String,
    pub ops: usize,
    pub concurrency: usize,
    /// Operations submitted one at a time into an idle queue, for pickup latency.
    pub idle_samples: usize,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub backend: &'static str,
    pub ops: usize,
    pub concurrency: usize,
    pub ops_per_sec: f64,
    pub submit_per_sec: f64,
    /// Pickup (submit → attempt start) with an idle queue.
    pub pickup_p50_ms: f64,
    pub pickup_p99_ms: f64,
    pub idle_samples: usize,
    /// Pickup while the queue is loaded by the throughput run.
    pub loaded_pickup_p50_ms: f64,
    pub loaded_pickup_p99_ms: f64,
    pub peak_rss_mb: f64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<BenchReport> {
    let settings = bench_settings(Settings::load(None, std::iter::empty())?, &args.database, args.concurrency)?;
    let components = crate::Components { api: false, worker: true, scheduler: false };
    let running = crate::start(
        &settings,
        components,
        crate::Bootstrap { migrate: true, first_admin_token: false, ..Default::default() },
    )
    .await?;
    let store = running.store.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let run_id = ulid::Ulid::new();
    let idle_tag = format!("bench-idle-{run_id}");
    for i in 0..args.idle_samples {
        submit(&store, &idle_tag).await?;
        // Counted by index: an operation may finish before a count read after its submit.
        wait_for(&store, &idle_tag, i + 1, Duration::from_secs(30)).await?;
    }

    let load_tag = format!("bench-load-{run_id}");
    let started = Instant::now();
    let per_task = args.ops.div_ceil(args.concurrency.max(1));
    let mut submitters = tokio::task::JoinSet::new();
    for i in 0..args.concurrency.max(1) {
        let store = store.clone();
        let tag = load_tag.clone();
        let n = per_task.min(args.ops.saturating_sub(i * per_task));
        submitters.spawn(async move {
            for _ in 0..n {
                submit(&store, &tag).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = submitters.join_next().await {
        r??;
    }
    let submitted_in = started.elapsed();
    wait_for(&store, &load_tag, args.ops, Duration::from_secs(600)).await?;
    let elapsed = started.elapsed();

    let idle = store.pickup_latencies_ms(&idle_tag).await?;
    let loaded = store.pickup_latencies_ms(&load_tag).await?;
    running.stop().await?;
    Ok(BenchReport {
        backend: store.kind().as_str(),
        ops: args.ops,
        concurrency: args.concurrency,
        ops_per_sec: args.ops as f64 / elapsed.as_secs_f64(),
        submit_per_sec: args.ops as f64 / submitted_in.as_secs_f64(),
        pickup_p50_ms: percentile(&idle, 50.0),
        pickup_p99_ms: percentile(&idle, 99.0),
        idle_samples: idle.len(),
        loaded_pickup_p50_ms: percentile(&loaded, 50.0),
        loaded_pickup_p99_ms: percentile(&loaded, 99.0),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// A benchmark's in-process app: `database`, libvirt's test driver, `concurrency` workers' slots.
pub(crate) fn bench_settings(mut settings: Settings, database: &str, concurrency: usize) -> anyhow::Result<Settings> {
    settings.database.url = Some(database.to_owned());
    settings.database.max_connections = (concurrency as u32 + 8).max(16);
    settings.worker.libvirt_uri = "test:///default".into();
    settings.worker.host = Some(format!("bench-{}", std::process::id()));
    settings.worker.slots.diagnostics = concurrency.max(1);
    settings.worker.poll_interval_ms = 50;
    settings.scheduler.default_schedules = false;
    settings.api.listen = "127.0.0.1:0".parse()?;
    Ok(settings)
}

async fn submit(store: &Store, tag: &str) -> anyhow::Result<()> {
    let origin = Origin { requested_by: tag.to_owned(), request_id: None, idempotency_key: None, max_attempts: 3 };
    App::new(store.clone()).noop(NoopParams::default(), origin).await.context("submitting")?;
    Ok(())
}

async fn wait_for(store: &Store, tag: &str, n: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while (store.finished_count(tag).await? as usize) < n {
        anyhow::ensure!(Instant::now() < deadline, "operations did not finish within {limit:?}");
        // Pickup is read from the ledger's timestamps, so this poll does not skew it.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

pub(crate) fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    (sorted[rank] * 100.0).round() / 100.0
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub(crate) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}
