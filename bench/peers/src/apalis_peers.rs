//! Plain apalis 1.0 workers on apalis-postgres and apalis-sqlite, as their
//! READMEs set them up: the backend's own migrations (`setup`), its default
//! `Config`, N jobs pushed by `push_bulk` (one `push_tasks` call: one UNNEST
//! insert on PostgreSQL, one transaction of inserts on SQLite), then one
//! worker whose handler does nothing, limited to `concurrency` in flight.
//!
//! The clock starts as the worker starts and stops when the backend's table
//! holds all N jobs as `Done`: the handler counts its calls and only once it
//! has seen N is the table polled, so the poll does not load the drain.

use std::{
    future::Future,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::Context;
use apalis::prelude::{BoxDynError, TaskSink, WorkerBuilder, WorkerBuilderExt, WorkerError};
use apalis_core::backend::BackendConfig;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use sqlx::{PgPool, SqlitePool, postgres::PgPoolOptions};

use crate::wait_until;

/// Handler calls, across the one worker.
static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// The no-op job: does nothing but count itself.
async fn noop(_job: u32) -> Result<(), BoxDynError> {
    HANDLED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Generous: a drain that takes longer than this has failed.
const LIMIT: Duration = Duration::from_secs(1800);

pub async fn postgres(url: &str, ops: usize, concurrency: usize) -> anyhow::Result<Duration> {
    let pool = PgPoolOptions::new().connect(url).await.context("connecting to PostgreSQL")?;
    PostgresStorage::setup(&pool).await.context("apalis-postgres migrations")?;
    let mut storage = PostgresStorage::<u32>::new(&pool);
    let config = storage.config().clone();
    eprintln!(
        "apalis-postgres 1.0.0: queue {}, batch_size {}, lock_tasks {}, persist_results {}",
        config.queue, config.batch_size, config.lock_tasks, config.persist_results
    );
    let inserted = Instant::now();
    storage.push_bulk(jobs(ops)).await.context("push_bulk")?;
    eprintln!("inserted {ops} jobs in {:.3}s (push_bulk)", inserted.elapsed().as_secs_f64());

    let queue = config.queue.to_string();
    let done = || {
        let (pool, queue) = (pool.clone(), queue.clone());
        async move { pg_done(&pool, &queue).await }
    };
    let worker = WorkerBuilder::new("bench-peers").backend(storage).concurrency(concurrency).build(noop);
    drain(ops, done, |stop| worker.run_until(stopped(stop))).await
}

async fn pg_done(pool: &PgPool, queue: &str) -> anyhow::Result<usize> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'")
        .bind(queue)
        .fetch_one(pool)
        .await?;
    Ok(usize::try_from(n)?)
}

pub async fn sqlite(path: &str, ops: usize, concurrency: usize) -> anyhow::Result<Duration> {
    // As its README: `SqlitePool::connect` (sqlx's defaults) then `setup`,
    // whose PRAGMAs (journal_mode WAL, synchronous OFF, …) run on the pool.
    let pool = SqlitePool::connect(&format!("sqlite://{path}?mode=rwc")).await.context("opening SQLite")?;
    SqliteStorage::setup(&pool).await.context("apalis-sqlite setup")?;
    report_sqlite_settings(&pool, "after setup").await?;
    let mut storage = SqliteStorage::<u32>::new(&pool);
    let config = storage.config().clone();
    eprintln!(
        "apalis-sqlite 1.0.0: queue {}, batch_size {}, lock_tasks {}, persist_results {}",
        config.queue, config.batch_size, config.lock_tasks, config.persist_results
    );
    let inserted = Instant::now();
    storage.push_bulk(jobs(ops)).await.context("push_bulk")?;
    eprintln!("inserted {ops} jobs in {:.3}s (push_bulk)", inserted.elapsed().as_secs_f64());

    let queue = config.queue.to_string();
    let done = || {
        let (pool, queue) = (pool.clone(), queue.clone());
        async move { sqlite_done(&pool, &queue).await }
    };
    let worker = WorkerBuilder::new("bench-peers").backend(storage).concurrency(concurrency).build(noop);
    let elapsed = drain(ops, done, |stop| worker.run_until(stopped(stop))).await?;
    report_sqlite_settings(&pool, "after the drain").await?;
    Ok(elapsed)
}

async fn sqlite_done(pool: &SqlitePool, queue: &str) -> anyhow::Result<usize> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM Jobs WHERE job_type = ?1 AND status = 'Done'")
        .bind(queue)
        .fetch_one(pool)
        .await?;
    Ok(usize::try_from(n)?)
}

/// `synchronous` is a setting of each connection, not of the file: `setup`
/// set it on whichever pooled connection ran its PRAGMA, the others keep
/// SQLite's default (FULL). Prints the journal mode and, for every
/// connection the pool has open, its `synchronous`.
async fn report_sqlite_settings(pool: &SqlitePool, when: &str) -> anyhow::Result<()> {
    let open = pool.size() as usize;
    let mut conns = Vec::with_capacity(open);
    for _ in 0..open {
        conns.push(pool.acquire().await?);
    }
    let mut journal = String::new();
    let mut synchronous = Vec::with_capacity(open);
    for conn in &mut conns {
        journal = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut **conn).await?;
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut **conn).await?;
        synchronous.push(match level {
            0 => "OFF",
            1 => "NORMAL",
            2 => "FULL",
            3 => "EXTRA",
            _ => "?",
        });
    }
    eprintln!(
        "apalis-sqlite {when}: journal_mode={journal}; synchronous of the pool's {open} open connection(s): {}",
        synchronous.join(", ")
    );
    Ok(())
}

fn jobs(ops: usize) -> Vec<u32> {
    (0..ops).map(|i| i as u32).collect()
}

/// Runs the worker (`run(stop)`, stopped once everything is done) beside a
/// waiter: first the handler's count, then `done()`, the table's count of
/// finished jobs. Returns the worker's start → all N `Done` in the table.
async fn drain<D, DF, R, RF>(ops: usize, done: D, run: R) -> anyhow::Result<Duration>
where
    D: FnMut() -> DF,
    DF: Future<Output = anyhow::Result<usize>>,
    R: FnOnce(tokio::sync::oneshot::Receiver<()>) -> RF,
    RF: Future<Output = Result<(), WorkerError>>,
{
    HANDLED.store(0, Ordering::Relaxed);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    let worker = run(stop_rx);
    let waiter = async move {
        let handled =
            wait_until(ops, Duration::from_millis(1), LIMIT, || async { Ok(HANDLED.load(Ordering::Relaxed)) }).await?;
        let finished = wait_until(ops, Duration::from_millis(2), LIMIT, done).await?;
        let _ = stop_tx.send(());
        eprintln!(
            "handler saw {ops} at {:.3}s, table had {ops} Done at {:.3}s",
            (handled - started).as_secs_f64(),
            (finished - started).as_secs_f64()
        );
        anyhow::Ok(finished - started)
    };
    let mut worker = std::pin::pin!(worker);
    tokio::select! {
        ran = &mut worker => {
            ran.context("the apalis worker")?;
            anyhow::bail!("the apalis worker stopped before its {ops} jobs were done")
        }
        waited = waiter => {
            let elapsed = waited?;
            worker.await.context("the apalis worker")?;
            Ok(elapsed)
        }
    }
}

/// The worker's stop signal, in the shape `run_until` takes.
async fn stopped(stop: tokio::sync::oneshot::Receiver<()>) -> Result<(), WorkerError> {
    let _ = stop.await;
    Ok(())
}
