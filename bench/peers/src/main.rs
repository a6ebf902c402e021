//! Hyperfleet's queue peers, for `scripts/bench-peers.sh`. Each subcommand
//! drains pre-inserted no-op jobs and prints ONE line on stdout: jobs per
//! second. Detail (versions, settings, timings) goes to stderr.
//!
//! - `apalis-postgres`: a plain apalis 1.0 worker on apalis-postgres 1.0.
//! - `apalis-sqlite`: the same on apalis-sqlite 1.0 at its defaults.
//! - `raw-sqlite`: the floor of a SQLite queue on one connection, with no
//!   queue library at all: claim, attempt row, finish, one transaction each.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

mod apalis_peers;
mod raw_sqlite;

#[derive(Debug, Parser)]
#[command(about = "Queue peers for scripts/bench-peers.sh: prints jobs per second")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// apalis-postgres 1.0: its migrations, N jobs by one bulk push, then one
    /// worker with concurrency C and a no-op handler drains them; jobs per
    /// second from the worker's start to the last completion in its table.
    ApalisPostgres {
        /// postgres://… of an empty database.
        #[arg(long)]
        url: String,
        #[arg(long)]
        ops: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// apalis-sqlite 1.0 at its defaults (`SqlitePool::connect` and
    /// `SqliteStorage::setup`, as its README does): the same drain as
    /// `apalis-postgres`.
    ApalisSqlite {
        /// The database file (created; should not exist yet).
        #[arg(long)]
        path: String,
        #[arg(long)]
        ops: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// A SQLite queue with nothing but SQL on one connection in WAL mode:
    /// per job a claim, an attempt insert and a finish, each its own
    /// transaction (and its own commit).
    RawSqlite {
        /// The database file (created; should not exist yet).
        #[arg(long)]
        path: String,
        #[arg(long)]
        ops: usize,
        #[arg(long, value_enum, default_value_t = Synchronous::Full)]
        synchronous: Synchronous,
    },
}

/// SQLite's `synchronous` for the raw cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Synchronous {
    /// fsync the WAL at every commit.
    Full,
    /// fsync the WAL only at checkpoints.
    Normal,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (ops, elapsed) = match Cli::parse().command {
        Command::ApalisPostgres { url, ops, concurrency } => {
            (ops, apalis_peers::postgres(&url, ops, concurrency).await?)
        }
        Command::ApalisSqlite { path, ops, concurrency } => (ops, apalis_peers::sqlite(&path, ops, concurrency).await?),
        Command::RawSqlite { path, ops, synchronous } => (ops, raw_sqlite::run(&path, ops, synchronous).await?),
    };
    eprintln!("{ops} jobs in {:.3}s", elapsed.as_secs_f64());
    println!("{:.1}", per_second(ops, elapsed));
    Ok(())
}

fn per_second(ops: usize, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// Waits until `done()` reports at least `ops`, polling every `every`; gives
/// up after `limit`. Returns when it saw them all.
pub async fn wait_until<F, Fut>(ops: usize, every: Duration, limit: Duration, mut done: F) -> anyhow::Result<Instant>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let n = done().await?;
        if n >= ops {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {n} of {ops} jobs done within {limit:?}");
        tokio::time::sleep(every).await;
    }
}
