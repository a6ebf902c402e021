//! The queue's statements read their rows through indexes however small a
//! table was when they were first planned (PostgreSQL). A prepared
//! statement's generic plan is made once per connection, at its sixth run,
//! and kept: made while the attempt rows fitted a page, a sequential scan was
//! its cheapest plan, and it went on scanning every attempt row of the ledger
//! to close each batch's (10,000 rows a batch at 20,000 attempts). It takes
//! statistics from while the table was small (autovacuum's first `ANALYZE`
//! on a new install, here run by the test): without any, PostgreSQL assumes
//! at least ten pages and plans the index.
//!
//! The claim's plan is made once too (a generic plan, from the first run):
//! made while the statistics saw a backlog of one class, a claim that let the
//! queue drop out of its order walked the primary key from the oldest
//! operation past every finished one, each claim (31 million index entries
//! in a 20,000-operation drain).
//!
//! And a claim planned while the ledger was near empty found the rows it
//! updates through the runnable index, matching every queued row against its
//! candidates: once a backlog formed under a steady stream of submits, each
//! claim of a few read all of it (53,242 runnable entries for 400 operations
//! here; 25 million in a 20,000-operation submit benchmark).
//!
//! Beside a long history, a batch's close was planned as a bitmap scan of a
//! status index for its `running` rows; a bitmap scan never marks the entries
//! it finds dead, so each close read every entry earlier claims had left
//! there (28,500 for 400 operations beside 50,000 finished; a drain beside
//! 1,000,000 ran at 0.4× of its speed beside an empty ledger).

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, Options, TestApp, unlimited_rate};

const OPERATIONS: i64 = 400;

/// These tests count index entries read, which depends on which dead entries
/// an index scan may mark: a long transaction anywhere on the server (the
/// history one of them writes) holds that back for all. One at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `sql`'s figure and the operations' row updates it reports (its two
/// columns), once those updates reach `updated`: PostgreSQL's statistics lag
/// its backends by up to their idle flush interval.
async fn once_flushed(db: &mut sqlx::PgConnection, sql: &str, updated: i64) -> (i64, i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *db).await.unwrap();
        let (figure, updates): (i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut *db).await.unwrap();
        if updates >= updated || std::time::Instant::now() > deadline {
            return (figure, updates);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Attempt rows read by sequential scans, and the attempts' updates.
async fn attempt_reads(db: &mut sqlx::PgConnection, updated: i64) -> (i64, i64) {
    let sql = "SELECT seq_tup_read, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'operation_attempts'";
    once_flushed(db, sql, updated).await
}

/// An app without a worker of its own; its worker process (started later)
/// has 16 slots: batches of 16, as a drain runs.
async fn drainer() -> TestApp {
    let mut env = unlimited_rate();
    env.push(("HYPERFLEET__WORKER__SLOTS__DIAGNOSTICS".to_owned(), "16".to_owned()));
    TestApp::spawn_with(Backend::Postgres, Options { worker: false, env, ..Options::default() }).await
}

#[tokio::test]
async fn a_queue_drained_from_empty_reads_only_the_rows_it_takes() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A backlog first, then the worker.
    let mut app = drainer().await;
    let mut db = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    for _ in 0..OPERATIONS {
        let r = app.post("/api/v1/diagnostics/noop", json!({"sleep_ms": 0})).await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    // As autovacuum does on a new install: statistics taken while the attempt
    // rows are few, and while every operation is a queued noop.
    sqlx::query("ANALYZE operation_attempts, operations").execute(&mut db).await.unwrap();
    app.spawn_worker_process();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operations WHERE status = 'succeeded'")
            .fetch_one(&mut db)
            .await
            .unwrap();
        if done == OPERATIONS {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{done} of {OPERATIONS} succeeded");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (read, updates) = attempt_reads(&mut db, OPERATIONS).await;
    assert!(updates >= OPERATIONS, "the statistics never showed the attempts closed ({updates})");
    // A scan of the table while it was still empty reads no row; one made on its way reads them all.
    assert_eq!(read, 0, "attempt rows read by sequential scans while the queue drained");
    // Each operation is read by its id a few times (claimed, closed, shown);
    // a walk of the primary key past the finished ones reads them again each claim.
    let by_id: i64 =
        sqlx::query_scalar("SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'operations_pkey'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    println!("operations read by id: {by_id} for {OPERATIONS} operations");
    assert!(by_id < 10 * OPERATIONS, "{by_id} entries of the primary key read to drain {OPERATIONS} operations");
    app.stop().await;
}

/// Index entries of `index` (an operations index) read so far, once at
/// least `updated` operation rows' updates are counted.
async fn index_reads(db: &mut sqlx::PgConnection, index: &str, updated: i64) -> i64 {
    let sql = format!(
        "SELECT i.idx_tup_read, t.n_tup_upd FROM pg_stat_user_indexes i \
         JOIN pg_stat_user_tables t ON t.relid = i.relid WHERE i.indexrelname = '{index}'"
    );
    once_flushed(db, &sql, updated).await.0
}

#[tokio::test]
async fn a_backlog_that_forms_later_is_claimed_by_lookups_not_rereads() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // Claims planned while the ledger is empty, as on a new install; then a
    // backlog forms while the worker takes from it, 4 at a time.
    let mut env = unlimited_rate();
    env.push(("HYPERFLEET__WORKER__SLOTS__DIAGNOSTICS".to_owned(), "4".to_owned()));
    let app = TestApp::spawn_with(Backend::Postgres, Options { env, ..Options::default() }).await;
    let mut db = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("ANALYZE operations").execute(&mut db).await.unwrap();
    let mut warm = Vec::new();
    for _ in 0..40 {
        warm.push(app.noop(0, 0).await);
    }
    for id in &warm {
        app.wait_status(id, &["succeeded"]).await;
    }
    let before = index_reads(&mut db, "operations_runnable", 0).await;
    let mut backlog = Vec::new();
    for _ in 0..OPERATIONS {
        backlog.push(app.noop(20, 0).await);
    }
    for id in &backlog {
        app.wait_status(id, &["succeeded"]).await;
    }
    // Claimed, then finished: two updates of each.
    let read = index_reads(&mut db, "operations_runnable", 2 * (OPERATIONS + 40)).await - before;
    println!("runnable entries read: {read} to claim a backlog of {OPERATIONS}");
    // Taking the oldest reads a few entries; the bug this holds off read every
    // queued row for each claim (the claim's update found its rows through the
    // runnable index, not by id): hundreds per claim.
    assert!(read < 10 * OPERATIONS, "{read} runnable entries read to claim {OPERATIONS} operations");
    app.stop().await;
}

/// Entries read so far from the indexes a close may find running rows by.
async fn status_reads(db: &mut sqlx::PgConnection) -> i64 {
    let mut total = 0;
    for index in ["operations_status_id", "operations_status_kind_id", "operations_lease"] {
        total += index_reads(db, index, 0).await;
    }
    total
}

#[tokio::test]
async fn a_drain_beside_a_long_history_reads_only_the_running_rows() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A finished history with its statistics, then a backlog: each batch's
    // close finds its operations among the running ones.
    let mut app = drainer().await;
    let store = app.core().await.store().clone();
    store.bench_fill("history", 50_000, hyperfleet_core::store::Fill::Finished).await.unwrap();
    store.bench_fill("backlog", OPERATIONS as u64, hyperfleet_core::store::Fill::Queued).await.unwrap();
    let mut db = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("ANALYZE operations, operation_attempts").execute(&mut db).await.unwrap();
    let before = status_reads(&mut db).await;
    app.spawn_worker_process();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM operations WHERE requested_by = 'backlog' AND finished_at IS NULL",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} of {OPERATIONS} left");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    index_reads(&mut db, "operations_pkey", 2 * OPERATIONS).await;
    let read = status_reads(&mut db).await - before;
    println!("status index entries read: {read} to drain {OPERATIONS} beside 50,000 finished");
    // A bitmap scan never marks the entries it finds dead: each close then
    // read every `running` entry its predecessors left behind.
    assert!(read < 20 * OPERATIONS, "{read} status index entries read to drain {OPERATIONS} operations");
    app.stop().await;
}
