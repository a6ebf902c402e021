//! `hyperfleet bench`: runs `noop` operations on an in-process worker and
//! reports figures from the ledger itself (submit → first attempt start, the
//! first start → the last end). Two modes: `submit` sends them through the
//! same submit path the API uses while the worker runs them; `drain` inserts
//! them with one statement and measures the worker emptying the queue.
//! `--prefill-finished N` first writes N finished operations (with their
//! attempts), to measure against a ledger with history. Not a test: it prints.

use std::time::{Duration, Instant};

use anyhow::Context;
use hyperfleet_core::{
    OperationId,
    app::{App, Origin},
    operation::NoopParams,
    queue::SHARED_QUEUE,
    settings::Settings,
    store::{Fill, Store},
};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Submit through the app's submit path while the worker runs them.
    Submit,
    /// Pre-insert all of them in one statement, then let the worker drain the queue.
    Drain,
}

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub database: String,
    pub mode: Mode,
    pub ops: usize,
    pub concurrency: usize,
    /// Operations submitted one at a time into an idle queue, for pickup latency.
    pub idle_samples: usize,
    /// Finished operations (with attempt rows) written before anything is measured.
    pub prefill_finished: usize,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub backend: &'static str,
    pub mode: Mode,
    pub ops: usize,
    pub concurrency: usize,
    pub prefill_finished: usize,
    /// Submit mode: ops / (first submit → last finished), wall clock.
    /// Drain mode: ops / (first attempt start → last finish), from the ledger.
    pub ops_per_sec: f64,
    /// Submit mode: submits per second. Drain mode: rows per second of the one insert.
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
    if args.prefill_finished > 0 {
        store.bench_fill(&format!("bench-history-{run_id}"), args.prefill_finished as u64, Fill::Finished).await?;
    }
    let idle_tag = format!("bench-idle-{run_id}");
    for _ in 0..args.idle_samples {
        let id = submit(&store, &idle_tag).await?;
        wait_finished(&store, id, Duration::from_secs(30)).await?;
    }

    let load_tag = format!("bench-load-{run_id}");
    let (ops_per_sec, submit_per_sec) = match args.mode {
        Mode::Submit => submit_and_run(&store, &load_tag, &args).await?,
        Mode::Drain => drain(&store, &load_tag, args.ops).await?,
    };

    let idle = store.pickup_latencies_ms(&idle_tag).await?;
    // A drain's pickup is its queue's length, not a latency: not read per operation.
    let loaded = match args.mode {
        Mode::Submit => store.pickup_latencies_ms(&load_tag).await?,
        Mode::Drain => Vec::new(),
    };
    running.stop().await?;
    Ok(BenchReport {
        backend: store.kind().as_str(),
        mode: args.mode,
        ops: args.ops,
        concurrency: args.concurrency,
        prefill_finished: args.prefill_finished,
        ops_per_sec,
        submit_per_sec,
        pickup_p50_ms: percentile(&idle, 50.0),
        pickup_p99_ms: percentile(&idle, 99.0),
        idle_samples: idle.len(),
        loaded_pickup_p50_ms: percentile(&loaded, 50.0),
        loaded_pickup_p99_ms: percentile(&loaded, 99.0),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// `concurrency` tasks submit `ops` operations between them while the worker
/// runs them; returns (ops/s until the last finished, submits/s).
async fn submit_and_run(store: &Store, tag: &str, args: &BenchArgs) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let per_task = args.ops.div_ceil(args.concurrency.max(1));
    let mut submitters = tokio::task::JoinSet::new();
    for i in 0..args.concurrency.max(1) {
        let store = store.clone();
        let tag = tag.to_owned();
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
    wait_drained(store, drain_limit(args.ops)).await?;
    anyhow::ensure!(store.finished_count(tag).await? as usize == args.ops, "not every operation finished");
    let elapsed = started.elapsed();
    Ok((args.ops as f64 / elapsed.as_secs_f64(), args.ops as f64 / submitted_in.as_secs_f64()))
}

/// Inserts `ops` queued operations in one statement and waits for the worker
/// to drain them; returns (ops/s from the ledger's timestamps, rows/s inserted).
async fn drain(store: &Store, tag: &str, ops: usize) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    store.bench_fill(tag, ops as u64, Fill::Queued).await?;
    let inserted_in = started.elapsed();
    wait_drained(store, drain_limit(ops)).await?;
    let figures = store.drain_figures(tag).await?;
    anyhow::ensure!(figures.finished as usize == ops, "{} of {ops} operations finished", figures.finished);
    let (Some(first), Some(last)) = (figures.first_start, figures.last_finish) else {
        anyhow::bail!("the drained operations have no attempt times");
    };
    let seconds = last.millis_since(first) / 1000.0;
    Ok((ops as f64 / seconds, ops as f64 / inserted_in.as_secs_f64()))
}

/// Generous: a slow machine drains at least 100 operations a second.
fn drain_limit(ops: usize) -> Duration {
    Duration::from_secs(600).max(Duration::from_secs((ops / 100) as u64))
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

async fn submit(store: &Store, tag: &str) -> anyhow::Result<OperationId> {
    let origin = Origin { requested_by: tag.to_owned(), request_id: None, idempotency_key: None, max_attempts: 3 };
    let submitted = App::new(store.clone()).noop(NoopParams::default(), origin).await.context("submitting")?;
    Ok(submitted.operation.id)
}

/// Waits for one operation, reading it by id: a poll that scanned the ledger
/// would load the database it measures (more so with a long history).
async fn wait_finished(store: &Store, id: OperationId, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !store.operation(id).await?.status.is_terminal() {
        anyhow::ensure!(Instant::now() < deadline, "operation {id} did not finish within {limit:?}");
        // Pickup is read from the ledger's timestamps, so this poll does not skew it.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Waits until the shared queue has nothing unfinished. The figures are read
/// from the ledger's timestamps, not from when this notices: it looks four
/// times a second, so that its count (a scan of the queue's rows while the
/// statistics still see a backlog) does not load the database it measures.
async fn wait_drained(store: &Store, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while store.unfinished_count(SHARED_QUEUE).await? > 0 {
        anyhow::ensure!(Instant::now() < deadline, "the queue was not drained within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
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
