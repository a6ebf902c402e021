//! The raw limit of a SQLite queue: one connection (sqlx 0.9's, the same
//! bundled SQLite as the apalis peers), WAL mode, `synchronous` FULL or
//! NORMAL, no queue library and no concurrency. N jobs are pre-inserted by
//! one statement; then, for each job, three transactions in a row:
//!
//! 1. claim: the oldest queued job becomes `running` (`UPDATE … RETURNING id`),
//! 2. an attempt row is inserted for it,
//! 3. finish: the job becomes `done`.
//!
//! Prints N / seconds over the 3 × N transactions: what a queue that keeps a
//! job row and an attempt row, and commits each step, cannot beat on this disk.

use std::{
    str::FromStr,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use sqlx::{
    Connection, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

use crate::Synchronous;

const SCHEMA: &[&str] = &[
    "CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        status TEXT NOT NULL,
        payload TEXT NOT NULL,
        lock_at INTEGER,
        done_at INTEGER
    )",
    // What the claim reads: the queued jobs in order (a queue without it scans
    // every finished row before the first queued one).
    "CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued'",
    "CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs (id),
        started_at INTEGER NOT NULL
    )",
];

pub async fn run(path: &str, ops: usize, synchronous: Synchronous) -> anyhow::Result<Duration> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match synchronous {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        });
    let mut conn = SqliteConnection::connect_with(&options).await.context("opening SQLite")?;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await?;
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut conn).await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&mut conn).await?;
    eprintln!(
        "raw SQLite {version}: journal_mode={journal}, synchronous={level} (0 OFF, 1 NORMAL, 2 FULL), one connection"
    );

    for statement in SCHEMA {
        sqlx::query(*statement).execute(&mut conn).await?;
    }
    let inserted = Instant::now();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO jobs (status, payload) SELECT 'queued', '{}' FROM n",
    )
    .bind(i64::try_from(ops)?)
    .execute(&mut conn)
    .await?;
    eprintln!("inserted {ops} jobs in {:.3}s (one statement)", inserted.elapsed().as_secs_f64());

    let started = Instant::now();
    for _ in 0..ops {
        let mut tx = conn.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "UPDATE jobs SET status = 'running', lock_at = ?1
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1)
             RETURNING id",
        )
        .bind(now_ms()?)
        .fetch_one(&mut *tx)
        .await
        .context("claiming a job")?;
        tx.commit().await?;

        let mut tx = conn.begin().await?;
        sqlx::query("INSERT INTO attempts (job_id, started_at) VALUES (?1, ?2)")
            .bind(id)
            .bind(now_ms()?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;

        let mut tx = conn.begin().await?;
        sqlx::query("UPDATE jobs SET status = 'done', done_at = ?2 WHERE id = ?1")
            .bind(id)
            .bind(now_ms()?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let elapsed = started.elapsed();

    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'done'").fetch_one(&mut conn).await?;
    anyhow::ensure!(usize::try_from(done)? == ops, "{done} of {ops} jobs done");
    conn.close().await?;
    Ok(elapsed)
}

fn now_ms() -> anyhow::Result<i64> {
    Ok(i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?)
}
