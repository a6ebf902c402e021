//! Filling a ledger for the dashboard benchmark: `n` finished operations in
//! one `INSERT … SELECT`, spread evenly over a time span that ends now. Rows
//! are what a busy fleet leaves behind: six VM power kinds, health runs,
//! backup verifications, alert deliveries and noops over seven hosts and
//! 2,003 VMs; 2 % failed, 1 % cancelled, the rest succeeded. Ids are UUID v7
//! built from each row's creation time, so id order is time order as in a
//! real ledger. Only the SQL differs per backend (a row counter and text
//! formatting); the rows are the same.

use super::{Backend, Store};
use crate::{Result, operation::OperationKind};

/// The kind of row `n`, by `n % 10`.
const KINDS: [OperationKind; 10] = [
    OperationKind::VmStart,
    OperationKind::VmShutdown,
    OperationKind::VmReboot,
    OperationKind::VmDestroy,
    OperationKind::VmSuspend,
    OperationKind::VmResume,
    OperationKind::HealthRun,
    OperationKind::BackupVerify,
    OperationKind::AlertDeliver,
    OperationKind::Noop,
];

/// `CASE n % 10 …` giving what `of` says of each row's kind.
fn by_kind(of: impl Fn(OperationKind) -> &'static str) -> String {
    let arms: String = KINDS.iter().enumerate().map(|(i, k)| format!("WHEN {i} THEN '{}' ", of(*k))).collect();
    format!("CASE n % 10 {arms}END")
}

/// Column values shared by both backends, over `n` (row number) and `ms`
/// (creation time in Unix milliseconds).
const COLUMNS: &str = "id, kind, class, host, vm, params, status, queue, requested_by, request_hash, attempt_count, \
                       max_attempts, error_class, error_code, last_error, created_at, started_at, finished_at, \
                       updated_at";

fn values(id: &str, ts: impl Fn(&str) -> String) -> String {
    let host = "'bench-hv' || (n % 7)";
    format!(
        "{id}, \
         {}, {}, \
         CASE WHEN n % 10 IN (8, 9) THEN NULL ELSE {host} END, \
         CASE WHEN n % 10 IN (6, 8, 9) THEN NULL ELSE 'vm' || (n % 2003) END, \
         '{{}}', \
         CASE WHEN n % 50 = 3 THEN 'failed' WHEN n % 100 = 7 THEN 'cancelled' ELSE 'succeeded' END, \
         CASE WHEN n % 10 IN (8, 9) THEN 'hyperfleet.shared' ELSE 'hyperfleet.host.' || {host} END, \
         'bench', 'bench', 1, 3, \
         CASE WHEN n % 50 = 3 THEN 'permanent' END, \
         CASE WHEN n % 50 = 3 THEN 'bench_failure' END, \
         CASE WHEN n % 50 = 3 THEN 'failed on purpose by the benchmark fill' END, \
         {}, {}, {}, {}",
        by_kind(OperationKind::as_str),
        by_kind(|k| k.class().as_str()),
        ts("ms"),
        ts("ms + 10"),
        ts("ms + 500"),
        ts("ms + 500"),
    )
}

impl Store {
    /// Inserts `n` finished operations created over the `span_ms` before
    /// now, then refreshes the planner's statistics (as autovacuum would).
    pub async fn bench_fill_operations(&self, n: i64, span_ms: i64) -> Result<()> {
        let end_ms = self.now().0.timestamp_millis();
        let step = (span_ms / n.max(1)).max(1);
        let start_ms = end_ms - step * n;
        match &self.backend {
            Backend::Sqlite(pools) => {
                let id = "printf('%08x-%04x-7%03x-%04x-%012x', ms >> 16, ms & 65535, n & 4095, \
                          32768 | ((n >> 12) & 4095), n)";
                let ts = |e: &str| {
                    format!(
                        "strftime('%Y-%m-%dT%H:%M:%S', ({e}) / 1000, 'unixepoch') || printf('.%06dZ', (({e}) % 1000) * 1000)"
                    )
                };
                let sql = format!(
                    "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1) \
                     INSERT INTO operations ({COLUMNS}) SELECT {} FROM (SELECT n, $2 + n * $3 AS ms FROM seq)",
                    values(id, ts)
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n).bind(start_ms).bind(step).execute(&pools.write).await?;
            }
            Backend::Postgres(pool, _) => {
                let id = "(lpad(to_hex(ms >> 16), 8, '0') || '-' || lpad(to_hex(ms & 65535), 4, '0') || '-7' || \
                          lpad(to_hex(n & 4095), 3, '0') || '-' || to_hex(32768 | ((n >> 12) & 4095)) || '-' || \
                          lpad(to_hex(n), 12, '0'))::uuid";
                let ts = |e: &str| format!("to_timestamp(({e})::double precision / 1000)");
                let sql = format!(
                    "INSERT INTO operations ({COLUMNS}) SELECT {} \
                     FROM (SELECT n, $2::bigint + n * $3::bigint AS ms FROM generate_series(0::bigint, $1::bigint - 1) AS n) s",
                    values(id, ts)
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n).bind(start_ms).bind(step).execute(pool).await?;
                sqlx::query("ANALYZE operations").execute(pool).await?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// Adds `n` running VMs, `vm0`, `vm1`, … spread over the hosts
    /// `bench-hv0` … `bench-hv6`, as the inventory would hold them.
    pub async fn bench_fill_vms(&self, n: i64) -> Result<()> {
        let now = self.now();
        let (seq, uuid) = match &self.backend {
            Backend::Sqlite(_) => (
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1) ",
                "printf('00000000-0000-4000-8000-%012d', n)",
            ),
            Backend::Postgres(..) => ("", "'00000000-0000-4000-8000-' || lpad(n::text, 12, '0')"),
        };
        let from = match &self.backend {
            Backend::Sqlite(_) => "seq",
            Backend::Postgres(..) => "generate_series(0::bigint, $1::bigint - 1) AS n",
        };
        let sql = format!(
            "{seq}INSERT INTO vms (host, name, uuid, state, state_reason, vcpus, memory_kib, autostart, persistent, \
             updated_at) SELECT 'bench-hv' || (n % 7), 'vm' || n, {uuid}, 'running', 'booted', 2, 2097152, TRUE, \
             TRUE, $2 FROM {from}"
        );
        super::with_db!(self, |pool, Db| {
            sqlx::query::<Db>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(n)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Every operation in the ledger, counted.
    pub async fn operations_count(&self) -> Result<i64> {
        Ok(super::read_db!(self, |pool, Db| {
            sqlx::query_scalar::<Db, i64>("SELECT COUNT(*) FROM operations").fetch_one(pool).await
        })?)
    }
}
