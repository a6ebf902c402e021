//! Both backends migrate to the same logical schema: the same tables with the
//! same columns, and no second job table beside them (the ledger is the queue).

use std::collections::BTreeSet;

use sqlx::{Connection, Row};

use crate::helpers::{Backend, fresh_database};

const OURS: [&str; 13] = [
    "operations",
    "operation_attempts",
    "hosts",
    "vms",
    "isos",
    "api_tokens",
    "audit_events",
    "schedules",
    "schedule_fires",
    "health_runs",
    "health_results",
    "health_state",
    "health_events",
];

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut columns = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let url = fresh_database(backend, dir.path()).await;
        let store =
            hyperfleet_core::store::Store::connect(&url, hyperfleet_core::store::PoolConfig::new(2)).await.unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.expect("migrating twice is a no-op");
        store.readiness().await.expect("ready after migrating");
        let mut set = BTreeSet::new();
        match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                for table in OURS {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({table})")))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    for r in rows {
                        set.insert((table.to_owned(), r.get::<String, _>("name")));
                    }
                }
                let transport: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'Jobs'")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(transport, 0, "the ledger is the queue: no second job table");
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
                assert_eq!(mode, "wal");
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let rows = sqlx::query(
                    "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                     WHERE table_schema = 'public' AND table_name = ANY($1)",
                )
                .bind(OURS.map(str::to_owned).to_vec())
                .fetch_all(&mut conn)
                .await
                .unwrap();
                for r in rows {
                    set.insert((r.get::<String, _>("t"), r.get::<String, _>("c")));
                }
                let transport: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'apalis'")
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                assert_eq!(transport, 0, "the ledger is the queue: no second job table");
            }
        }
        assert!(set.len() > 40, "{backend:?}: {set:?}");
        columns.push(set);
        store.close().await;
    }
    assert_eq!(columns[0], columns[1], "SQLite and PostgreSQL schemas differ");
}
