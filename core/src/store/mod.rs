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
mod fleet_monitor;
mod health;
mod inventory;
mod ledger;
mod operations;
mod retention;
mod rows;
mod schedules;
mod silences;
mod stats;
mod tokens;
mod tx;

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use alert_routing::ChannelStats;
pub use alerts::{AlertFilter, AlertPage};
pub use audit::{AuditEntry, AuditEvent, ChainCheck};
pub use health::{FleetFigures, HealthEventRecord, HealthResultRecord, HealthRunRecord, HealthStateRecord};
pub use inventory::{DiskUsage, HostRecord, IsoRecord, SystemInfo, VmRecord};
pub use ledger::{Claim, Finish, ReapReport};
pub use operations::{OperationFilter, OperationPage, Submitted};
pub use retention::PruneReport;
pub use schedules::{FireRecord, ScheduleDef, ScheduleRecord};
pub use tokens::TokenRecord;

use crate::{Error, Result, queue::Wakes};

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
            $crate::store::Backend::Postgres($pool) => {
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
            $crate::store::Backend::Postgres($pool) => {
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
    Postgres(PgPool),
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

/// Our own migration history lives apart from apalis's `_sqlx_migrations`, so
/// neither migrator sees the other's rows as unknown.
const MIGRATIONS_TABLE: &str = "hyperfleet_migrations";

/// SQLite connection settings, chosen on purpose:
/// - WAL, so the API reads while workers write;
/// - `synchronous=FULL`: every commit is fsynced before it returns. An
///   operation answered with 202 is then on disk even across a power cut;
///   `NORMAL` would be faster but may roll back the last commits, i.e. lose
///   accepted work. (apalis's own `setup()` sets `OFF`; we never call it.)
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

impl Store {
    /// Connects without migrating (see [`Store::migrate`]).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let backend = if url.starts_with("sqlite:") {
            if let Some(path) = sqlite_path(url)
                && let Some(parent) = std::path::Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(Error::internal)?;
            }
            let options = sqlite_options(url)?;
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.read_only(true))
                .await?;
            Backend::Sqlite(SqlitePools { write, read })
        } else {
            let options = PgConnectOptions::from_str(url).map_err(|e| Error::invalid("invalid_database_url", e))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            Backend::Postgres(pool)
        };
        Ok(Self { backend, wakes: Arc::default() })
    }

    /// A store that never connects: for code paths that need the type but no
    /// database (rendering the OpenAPI document).
    pub fn detached() -> Result<Self> {
        let pool = SqlitePoolOptions::new().connect_lazy_with(sqlite_options("sqlite::memory:")?);
        Ok(Self { backend: Backend::Sqlite(SqlitePools { write: pool.clone(), read: pool }), wakes: Arc::default() })
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.backend {
            Backend::Sqlite(p) => Some(&p.write),
            Backend::Postgres(_) => None,
        }
    }

    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres(p) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    /// Applies apalis's migrations (its own history table, tolerant of ours)
    /// and then the ledger's (in `hyperfleet_migrations`).
    #[tracing::instrument(skip(self))]
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(SqlitePools { write: pool, .. }) => {
                let mut apalis = apalis_sqlite::SqliteStorage::<()>::migrations();
                apalis.set_ignore_missing(true);
                apalis.run(pool).await.map_err(Error::internal)?;
                let mut ours = clone_migrator(&SQLITE_MIGRATIONS);
                ours.dangerous_set_table_name(MIGRATIONS_TABLE);
                ours.run(pool).await.map_err(Error::internal)?;
            }
            Backend::Postgres(pool) => {
                let mut apalis = apalis_postgres::PostgresStorage::<()>::migrations();
                apalis.set_ignore_missing(true);
                apalis.run(pool).await.map_err(Error::internal)?;
                let mut ours = clone_migrator(&POSTGRES_MIGRATIONS);
                ours.dangerous_set_table_name(MIGRATIONS_TABLE);
                ours.run(pool).await.map_err(Error::internal)?;
            }
        }
        Ok(())
    }

    /// Ready means: the database answers and every ledger migration is applied.
    pub async fn readiness(&self) -> Result<()> {
        let expected = match self.kind() {
            BackendKind::Sqlite => SQLITE_MIGRATIONS.iter().count(),
            BackendKind::Postgres => POSTGRES_MIGRATIONS.iter().count(),
        } as i64;
        let sql = "SELECT COUNT(*) FROM hyperfleet_migrations WHERE success";
        let applied: i64 = read_db!(self, |pool, Db| sqlx::query_scalar::<Db, i64>(sql).fetch_one(pool).await)
            .map_err(|e| Error::Unavailable(format!("migrations not applied: {e}")))?;
        if applied < expected {
            return Err(Error::Unavailable(format!("{applied} of {expected} migrations applied")));
        }
        Ok(())
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => {
                p.read.close().await;
                p.write.close().await;
            }
            Backend::Postgres(p) => p.close().await,
        }
    }
}

fn clone_migrator(m: &Migrator) -> Migrator {
    Migrator::with_migrations(m.iter().cloned().collect())
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}
