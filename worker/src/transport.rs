//! apalis wiring: one apalis worker per queue, woken by in-process commits,
//! by PostgreSQL LISTEN/NOTIFY, and by a poll interval (for SQLite written by
//! other processes and for delayed retries). Its handler only hands the
//! operation id to the [`Runner`]; apalis's own retries are not used.

use std::time::Duration;

use apalis::prelude::*;
use hyperfleet_core::{queue::Wake, store::Store};
use tokio_util::sync::CancellationToken;

use crate::runner::Runner;

async fn handle(wake: Wake, runner: Data<Runner>) -> Result<(), BoxDynError> {
    runner.dispatch(wake.operation_id).await.map_err(|e| Box::new(e) as BoxDynError)
}

async fn stopped(token: CancellationToken) -> Result<(), WorkerError> {
    token.cancelled().await;
    Ok(())
}

/// Runs an apalis worker on `queue` until `shutdown`.
pub async fn serve(store: Store, queue: String, runner: Runner, poll: Duration, shutdown: CancellationToken) {
    // Unique per process: apalis refuses a worker name still within its heartbeat.
    let name = format!("{}:{queue}", runner.worker_id());
    let wakes = store.wakes.subscribe(&queue);
    let result = if let Some(pool) = store.sqlite_pool() {
        let config = apalis_sqlite::Config::default().queue(&queue).batch_size(32).persist_results(false);
        let strategy = Strategy::new().stream(wakes).interval(poll);
        let backend = apalis_sqlite::SqliteStorage::<Wake>::new(pool).with_config(config).poll_with_strategy(strategy);
        WorkerBuilder::new(name).backend(backend).data(runner).build(handle).run_until(stopped(shutdown.clone())).await
    } else if let Some(pool) = store.postgres_pool() {
        let config = apalis_postgres::Config::default().queue(&queue).batch_size(32).persist_results(false);
        let notify = apalis_postgres::Pubsub::new(pool.clone(), queue.clone());
        let strategy = Strategy::new().stream(wakes).stream(notify).interval(poll);
        let backend =
            apalis_postgres::PostgresStorage::<Wake>::new(pool).with_config(config).poll_with_strategy(strategy);
        WorkerBuilder::new(name).backend(backend).data(runner).build(handle).run_until(stopped(shutdown.clone())).await
    } else {
        return;
    };
    if let Err(e) = result {
        tracing::error!(queue, error = %e, "queue transport stopped");
    }
}
