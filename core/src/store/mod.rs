//! The [`Store`]: the operation ledger, hosts and inventory over SQLite or
//! PostgreSQL. Both backends run the same SQL text (`$n` placeholders work on
//! both) through [`with_db!`]; only the migrations and the apalis push differ.
//!
//! Durability is explicit: SQLite runs in WAL mode with `synchronous=FULL`
//! (see [`sqlite_options`]); PostgreSQL keeps its server defaults.

mod alert_routing;
mod alert_tx;
mod alerts;
mod audit;
mod backups;
mod bench_fill;
mod bench_queue;
mod changes;
mod claim_sql;
mod group_commit;
mod handover;
mod health;
mod inventory;
mod ledger;
mod links;
mod metrics;
mod operations;
mod outcomes;
mod overview;
mod page;
mod queue_conns;
mod reconcilers;
mod retention;
mod rows;
mod schedules;
mod sessions;
mod silences;
mod stats;
mod tokens;
mod tx;
mod vm_list;
mod wakes;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use alert_routing::{ChannelStats, NewNotification};

pub use alerts::{AlertFilter, AlertPage};
pub use audit::{AuditEntry, AuditEvent, ChainCheck, GENESIS};
pub use backups::{BackupFilter, BackupRecord, NewVerification, VerificationRecord};
pub use bench_queue::{DrainFigures, Fill};
pub use changes::Change;
pub use group_commit::{LocalWorker, Reservation};
pub use handover::{Handover, NextClaim};
pub use health::{HealthEventRecord, HealthResultRecord, HealthRunRecord, HealthStateRecord};
pub use inventory::{DiskUsage, HostRecord, IsoRecord, SystemInfo, VmRecord};
pub use ledger::{Claim, ClaimGroup, TakenBack, claims_after};
pub use metrics::BackupMetricRow;
pub use operations::{OperationFilter, OperationPage, Submitted};
pub use overview::LedgerCounts;
pub use page::Page;
pub use reconcilers::{ReconcilerRun, RunRecord};
pub use retention::{PruneCutoffs, PruneReport};
pub use schedules::{Fire, FireRecord, ScheduleRecord};
pub use sessions::SessionRecord;
pub use tokens::TokenRecord;
pub use tx::{Links, Tx, WAKE_CHANNEL};
pub use vm_list::{VmCursor, VmFilter};

use crate::{
    Error, Result,
    queue::{Serving, Wakes},
};

/// Runs `$body` with `$pool` bound to the backend's pool for writing and `$db`
/// to its sqlx database type.
macro_rules! with_db {
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite(pools) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                let $pool = &pools.write;
                $body
            }
            $crate::store::Backend::Postgres($pool, _) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_db;

/// [`with_db!`] for read-only work: SQLite readers run beside the writer (WAL).
macro_rules! read_db {
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite(pools) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                let $pool = &pools.read;
                $body
            }
            $crate::store::Backend::Postgres($pool, _) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use read_db;

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePools),
    /// The pool, and the queue's own connections (see [`queue_conns`]).
    Postgres(PgPool, Arc<queue_conns::QueueConnections>),
}

/// SQLite allows one writer at a time. Writers in this process queue for the
/// one write connection (a fair async queue) instead of spinning in SQLite's
/// busy handler, whose sleeps grow to 100 ms under contention; readers use
/// their own connections beside it (WAL). Other processes sharing the file
/// still meet the busy timeout.
#[derive(Debug, Clone)]
pub(crate) struct SqlitePools {
    pub write: SqlitePool,
    pub read: SqlitePool,
}

/// The handle every component shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    pub wakes: Arc<Wakes>,
    /// Where submits wait to share a commit.
    submits: Arc<group_commit::GroupCommit>,
    /// Which of this process's queues are not being served, and why.
    pub serving: Arc<Serving>,
    /// The SQLite file's directory, whose free space readiness reports.
    sqlite_dir: Option<std::path::PathBuf>,
    /// Where this process's "now" comes from (see [`crate::time::Clock`]).
    clock: crate::time::Clock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Our own migration history lives apart from `_sqlx_migrations` (which
/// databases of earlier versions hold for apalis's tables), so neither
/// migrator sees the other's rows as unknown.
const MIGRATIONS_TABLE: &str = "hyperfleet_migrations";

/// SQLite connection settings, chosen on purpose:
/// - WAL, so the API reads while workers write;
/// - `synchronous=FULL`: every commit is fsynced before it returns. An
///   operation answered with 202 is then on disk even across a power cut;
///   `NORMAL` would be faster but may roll back the last commits, i.e. lose
///   accepted work.
/// - a busy timeout, so concurrent writers queue instead of failing;
/// - foreign keys on.
pub fn sqlite_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("invalid_database_url", e))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true))
}

/// How the store's connection pools behave.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails with
    /// `database_unavailable`: during an outage callers learn it quickly.
    pub acquire_timeout: Duration,
}

/// `database.acquire_timeout_ms` when not configured.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl PoolConfig {
    pub fn new(max_connections: u32) -> Self {
        Self { max_connections, acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT }
    }
}

/// Readiness is answered within this, whatever the database does.
const READINESS_TIMEOUT: Duration = Duration::from_millis(800);

/// Below this much free space on the SQLite file's filesystem, readiness says `storage_full`.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// Hands out the SQLite write connection only when it is clean. A COMMIT that
/// fails (a full disk: SQLITE_FULL) can leave SQLite and sqlx disagreeing on
/// whether a transaction is still open; reused, such a connection turned the
/// next "commits" into savepoint releases inside a transaction that never
/// committed — success answers for writes never stored. A connection in doubt
/// is closed (SQLite rolls back whatever it still holds) and a fresh one opened.
async fn writer_is_clean(conn: &mut sqlx::SqliteConnection) -> std::result::Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    conn.ping().await?; // runs any rollback still queued by a dropped transaction
    if conn.is_in_transaction() {
        tracing::warn!("discarding the SQLite write connection: a transaction did not end cleanly");
        return Ok(false);
    }
    // BEGIN fails if SQLite itself still holds a transaction sqlx no longer tracks.
    match sqlx::raw_sql("BEGIN; ROLLBACK").execute(&mut *conn).await {
        Ok(_) => Ok(true),
        Err(e) => {
            tracing::warn!(error = %e, "discarding the SQLite write connection: it still held a transaction");
            Ok(false)
        }
    }
}

impl Store {
    /// Connects without migrating (see [`Store::migrate`]).
    pub async fn connect(url: &str, pool: PoolConfig) -> Result<Self> {
        let PoolConfig { max_connections, acquire_timeout } = pool;
        let sqlite_dir = sqlite_path(url)
            .and_then(|p| std::path::Path::new(&p).parent().map(std::path::Path::to_path_buf))
            .map(|d| if d.as_os_str().is_empty() { ".".into() } else { d });
        let backend = if url.starts_with("sqlite:") {
            if let Some(dir) = &sqlite_dir {
                std::fs::create_dir_all(dir).map_err(Error::internal)?;
            }
            let options = sqlite_options(url)?;
            // Writers queue for the one write connection; that wait is contention,
            // not an outage, so it gets more room than `acquire_timeout`.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(acquire_timeout.max(Duration::from_secs(10)))
                .before_acquire(|conn, _| Box::pin(writer_is_clean(conn)))
                .connect_with(options.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options.read_only(true))
                .await?;
            Backend::Sqlite(SqlitePools { write, read })
        } else {
            let options = PgConnectOptions::from_str(url).map_err(|e| Error::invalid("invalid_database_url", e))?;
            let queue = queue_conns::QueueConnections::new(&options, max_connections, acquire_timeout);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            Backend::Postgres(pool, queue)
        };
        let wakes = Arc::<Wakes>::default();
        if let Backend::Postgres(pool, _) = &backend {
            wakes::spawn_announcer(pool.clone(), &wakes);
        }
        Ok(Self {
            backend,
            wakes,
            submits: Arc::default(),
            serving: Arc::default(),
            sqlite_dir,
            clock: Default::default(),
        })
    }

    /// A store that never connects: for code paths that need the type but no
    /// database (rendering the OpenAPI document).
    pub fn detached() -> Result<Self> {
        let pool = SqlitePoolOptions::new().connect_lazy_with(sqlite_options("sqlite::memory:")?);
        let backend = Backend::Sqlite(SqlitePools { write: pool.clone(), read: pool });
        Ok(Self {
            backend,
            wakes: Arc::default(),
            submits: Arc::default(),
            serving: Arc::default(),
            sqlite_dir: None,
            clock: Default::default(),
        })
    }

    /// The same store reading `clock` for "now".
    pub fn with_clock(mut self, clock: crate::time::Clock) -> Self {
        self.clock = clock;
        // Its submits are stamped and claimed by this clock: a committer of its own.
        self.submits = Arc::default();
        self
    }

    /// Lets `worker` (of this process) take work in the transaction that
    /// submits it, for as long as it lives (see [`group_commit`]).
    pub fn claim_at_submit(&self, worker: std::sync::Weak<dyn LocalWorker>) {
        self.submits.claim_for(worker);
    }

    /// Now, by this process's clock: every timestamp the ledger writes comes from here.
    pub fn now(&self) -> crate::Timestamp {
        self.clock.now()
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(..) => BackendKind::Postgres,
        }
    }

    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.backend {
            Backend::Sqlite(p) => Some(&p.write),
            Backend::Postgres(..) => None,
        }
    }

    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres(p, _) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    /// Applies the ledger's migrations (history in `hyperfleet_migrations`,
    /// apart from the `_sqlx_migrations` of earlier versions' apalis tables).
    #[tracing::instrument(skip(self))]
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(SqlitePools { write: pool, .. }) => {
                let mut ours = clone_migrator(&SQLITE_MIGRATIONS);
                ours.dangerous_set_table_name(MIGRATIONS_TABLE);
                ours.run(pool).await.map_err(Error::internal)?;
            }
            Backend::Postgres(pool, _) => {
                let mut ours = clone_migrator(&POSTGRES_MIGRATIONS);
                ours.dangerous_set_table_name(MIGRATIONS_TABLE);
                ours.run(pool).await.map_err(Error::internal)?;
            }
        }
        Ok(())
    }

    /// Ready means: the database answers within [`READINESS_TIMEOUT`], every
    /// ledger migration is applied, and (SQLite) its disk has room to write.
    pub async fn readiness(&self) -> Result<()> {
        match tokio::time::timeout(READINESS_TIMEOUT, self.check_ready()).await {
            Ok(result) => result,
            Err(_) => Err(Error::database_unavailable(format!("no answer within {READINESS_TIMEOUT:?}"))),
        }
    }

    async fn check_ready(&self) -> Result<()> {
        if let Some(dir) = &self.sqlite_dir {
            let free = free_bytes(dir).await?;
            if free < MIN_FREE_BYTES {
                return Err(Error::storage_full(format!("{free} bytes free in {}", dir.display())));
            }
        }
        let expected = match self.kind() {
            BackendKind::Sqlite => SQLITE_MIGRATIONS.iter().count(),
            BackendKind::Postgres => POSTGRES_MIGRATIONS.iter().count(),
        } as i64;
        let sql = "SELECT COUNT(*) FROM hyperfleet_migrations WHERE success";
        let applied: i64 = read_db!(self, |pool, Db| sqlx::query_scalar::<Db, i64>(sql).fetch_one(pool).await)
            .map_err(|e| match Error::from(e) {
                Error::Internal(e) => {
                    Error::Unavailable { code: "not_ready", message: format!("migrations not applied: {e}") }
                }
                other => other,
            })?;
        if applied < expected {
            let message = format!("{applied} of {expected} migrations applied");
            return Err(Error::Unavailable { code: "not_ready", message });
        }
        if let Some(problem) = self.serving.problem() {
            return Err(Error::Unavailable { code: "queue_not_served", message: problem });
        }
        Ok(())
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => {
                p.read.close().await;
                p.write.close().await;
            }
            Backend::Postgres(p, queue) => {
                queue.close().await;
                p.close().await;
            }
        }
    }
}

/// Free bytes for unprivileged writers on `dir`'s filesystem.
async fn free_bytes(dir: &std::path::Path) -> Result<u64> {
    let dir = dir.to_path_buf();
    let stat = tokio::task::spawn_blocking(move || nix::sys::statvfs::statvfs(&dir))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    Ok(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

fn clone_migrator(m: &Migrator) -> Migrator {
    Migrator::with_migrations(m.iter().cloned().collect())
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}
