//! Both backends migrate to the same logical schema, read from each
//! database's own catalogue: every table, every column with its logical type
//! and nullability, and every index with its columns and uniqueness — and no
//! second job table beside them (the ledger is the queue).

use std::collections::BTreeSet;

use sqlx::{Connection, Row};

use crate::helpers::{Backend, fresh_database};

/// (table, column, logical type, nullable)
type Column = (String, String, &'static str, bool);
/// (table, index, columns, unique)
type Index = (String, String, String, bool);

/// Storage types as one logical vocabulary: SQLite keeps UUIDs, times and JSON
/// as TEXT and booleans as INTEGER; PostgreSQL has native types for them.
fn logical(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "text" | "uuid" | "timestamptz" | "jsonb" | "json" => "text",
        "integer" | "int" | "int4" | "int8" | "bigint" | "boolean" | "bool" | "smallint" | "bigserial" => "integer",
        "real" | "double precision" | "float8" => "real",
        "blob" | "bytea" => "bytes",
        _ => "unknown",
    }
}

const IGNORED_TABLES: [&str; 2] = ["hyperfleet_migrations", "_sqlx_migrations"];

/// PostgreSQL's unique index of the operations that have an idempotency key
/// (partial: most have none, and a NULL entry was written at every status
/// change); SQLite keeps the column's own `UNIQUE` constraint, an autoindex
/// left out of its catalogue like every constraint-backed index.
const PARTIAL_UNIQUE_CONSTRAINTS: [(&str, &str); 1] = [("operations", "operations_idempotency_key")];

async fn sqlite_catalogue(url: &str) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let (mut columns, mut indexes) = (BTreeSet::new(), BTreeSet::new());
    for table in tables.iter().filter(|t| !IGNORED_TABLES.contains(&t.as_str())) {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({table})"))).fetch_all(&mut conn).await.unwrap();
        for r in rows {
            // Booleans are INTEGER columns holding 0/1 here; both map to integer.
            let ty = logical(&r.get::<String, _>("type"));
            let nullable = r.get::<i64, _>("notnull") == 0 && r.get::<i64, _>("pk") == 0;
            columns.insert((table.clone(), r.get::<String, _>("name"), ty, nullable));
        }
        let list =
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA index_list({table})"))).fetch_all(&mut conn).await.unwrap();
        for idx in list {
            let name: String = idx.get("name");
            if name.starts_with("sqlite_autoindex") {
                continue; // primary keys and UNIQUE constraints, compared through the columns
            }
            let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA index_info({name})")))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|c| c.get::<String, _>("name"))
                .collect();
            indexes.insert((table.clone(), name, cols.join(","), idx.get::<i64, _>("unique") == 1));
        }
    }
    let transport: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'Jobs'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(transport, 0, "the ledger is the queue: no second job table");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
    (columns, indexes)
}

async fn postgres_catalogue(url: &str) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let rows = sqlx::query(
        "SELECT c.table_name::text AS t, c.column_name::text AS c, c.data_type::text AS ty, \
         (c.is_nullable = 'YES') AS nullable FROM information_schema.columns c \
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut columns = BTreeSet::new();
    for r in rows {
        let table: String = r.get("t");
        if IGNORED_TABLES.contains(&table.as_str()) {
            continue;
        }
        let ty: String = r.get("ty");
        let ty = match ty.as_str() {
            "timestamp with time zone" => "text",
            other => logical(other),
        };
        columns.insert((table, r.get::<String, _>("c"), ty, r.get::<bool, _>("nullable")));
    }
    let rows = sqlx::query(
        "SELECT t.relname::text AS t, i.relname::text AS i, ix.indisunique AS u, ix.indisprimary AS p, \
         (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) \
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) AS cols, \
         (SELECT COUNT(*) FROM pg_constraint c WHERE c.conindid = i.oid AND c.contype = 'u') AS constraint_backed \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut indexes = BTreeSet::new();
    for r in rows {
        let table: String = r.get("t");
        // Primary keys and UNIQUE constraints are SQLite's autoindexes, left out there too.
        let index: String = r.get("i");
        if IGNORED_TABLES.contains(&table.as_str())
            || r.get::<bool, _>("p")
            || r.get::<i64, _>("constraint_backed") > 0
            || PARTIAL_UNIQUE_CONSTRAINTS.contains(&(table.as_str(), index.as_str()))
        {
            continue;
        }
        indexes.insert((table, index, r.get::<String, _>("cols"), r.get::<bool, _>("u")));
    }
    let transport: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'apalis'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(transport, 0, "the ledger is the queue: no second job table");
    (columns, indexes)
}

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalogues = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let url = fresh_database(backend, dir.path()).await;
        let store =
            hyperfleet_core::store::Store::connect(&url, hyperfleet_core::store::PoolConfig::new(2)).await.unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.expect("migrating twice is a no-op");
        store.readiness().await.expect("ready after migrating");
        store.close().await;
        let catalogue = match backend {
            Backend::Sqlite => sqlite_catalogue(&url).await,
            Backend::Postgres => postgres_catalogue(&url).await,
        };
        let tables: BTreeSet<&String> = catalogue.0.iter().map(|c| &c.0).collect();
        assert!(tables.len() >= 17, "{backend:?}: every table is read: {tables:?}");
        assert!(catalogue.0.iter().all(|c| c.2 != "unknown"), "{backend:?}: a type without a mapping");
        assert!(catalogue.1.len() >= 15, "{backend:?}: every index is read: {:?}", catalogue.1);
        println!("{backend:?}: {} tables, {} columns, {} indexes", tables.len(), catalogue.0.len(), catalogue.1.len());
        catalogues.push(catalogue);
    }
    let (sqlite, postgres) = (&catalogues[0], &catalogues[1]);
    let only = |a: &BTreeSet<Column>, b: &BTreeSet<Column>| a.difference(b).cloned().collect::<Vec<_>>();
    assert!(
        sqlite.0 == postgres.0,
        "columns differ: only in SQLite {:?}; only in PostgreSQL {:?}",
        only(&sqlite.0, &postgres.0),
        only(&postgres.0, &sqlite.0)
    );
    let only = |a: &BTreeSet<Index>, b: &BTreeSet<Index>| a.difference(b).cloned().collect::<Vec<_>>();
    assert!(
        sqlite.1 == postgres.1,
        "indexes differ: only in SQLite {:?}; only in PostgreSQL {:?}",
        only(&sqlite.1, &postgres.1),
        only(&postgres.1, &sqlite.1)
    );
}

/// The migration that indexed the runnable set by class filled in the class
/// of the rows already kept, from their kind, in SQL: it must agree with the
/// class the code writes (`OperationKind::class`) for every kind.
#[tokio::test]
async fn the_class_backfill_agrees_with_every_kind() {
    use hyperfleet_core::operation::OperationKind;

    let dir = tempfile::tempdir().unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let url = fresh_database(backend, dir.path()).await;
        let store =
            hyperfleet_core::store::Store::connect(&url, hyperfleet_core::store::PoolConfig::new(2)).await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let migration = match backend {
            Backend::Sqlite => include_str!("../../migrations/sqlite/20261201000060_runnable_by_class.sql"),
            Backend::Postgres => include_str!("../../migrations/postgres/20261201000060_runnable_by_class.sql"),
        };
        let backfill = migration.split(';').find(|s| s.contains("UPDATE operations SET class")).expect("the backfill");
        let rows: Vec<String> = OperationKind::ALL
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                format!(
                    "('00000000-0000-4000-8000-{i:012}', '{}', '{{}}', 'succeeded', 'q', 'test', '', 1, 1, FALSE, \
                     '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '')",
                    kind.as_str()
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO operations (id, kind, params, status, queue, requested_by, request_hash, attempt_count, \
             max_attempts, cancel_requested, created_at, updated_at, class) VALUES {}; {backfill}",
            rows.join(", ")
        );
        let read = "SELECT kind, class FROM operations";
        let classes: Vec<(String, String)> = match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
                sqlx::query_as(read).fetch_all(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
                sqlx::query_as(read).fetch_all(&mut conn).await.unwrap()
            }
        };
        assert_eq!(classes.len(), OperationKind::ALL.len());
        for (kind, class) in classes {
            let kind = OperationKind::parse(&kind).unwrap();
            assert_eq!(class, kind.class().as_str(), "{backend:?}: the backfilled class of {kind:?}");
        }
    }
}
