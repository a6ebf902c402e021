//! Backups and their verifications as stored. What a verification means
//! (the alert it raises or resolves) is decided in `crate::alert::sources`
//! and written by `crate::app` in the same transaction.

use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, types::Json};

use super::{Page, Store, read_db, tx::on_tx};
use crate::{
    BackupId, Error, OperationId, Result, Timestamp,
    backup::{BackupMethod, BackupState, Manifest, VerificationState, VerifyLevel, VerifyReport, VerifyResult},
};

const BACKUP_COLUMNS: &str = "id, host, vm, operation_id, state, method, dir, size_bytes, manifest, manifest_sha256, \
    error, created_at, finished_at";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BackupRecord {
    pub id: BackupId,
    pub host: String,
    pub vm: String,
    pub operation_id: OperationId,
    pub state: BackupState,
    pub method: Option<BackupMethod>,
    /// The backup's directory on its host.
    pub dir: String,
    pub size_bytes: Option<i64>,
    pub manifest: Option<Json<Value>>,
    pub manifest_sha256: Option<String>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl BackupRecord {
    /// The manifest as recorded when the backup completed.
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        self.manifest.as_ref().map(|m| serde_json::from_value(m.0.clone()).map_err(Error::internal)).transpose()
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VerificationRecord {
    pub id: i64,
    pub backup_id: BackupId,
    pub operation_id: OperationId,
    pub level: VerifyLevel,
    pub result: VerifyResult,
    pub code: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub details: Json<Value>,
}

/// Which backups to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct BackupFilter {
    pub host: Option<String>,
    pub vm: Option<String>,
    pub state: Option<BackupState>,
    /// Only backups whose derived verification state is this, with an ok
    /// verification finished before `.1` counting as outdated.
    pub verification: Option<(VerificationState, Timestamp)>,
    /// Start after this backup (the previous page's `next_cursor`).
    pub cursor: Option<BackupId>,
    pub limit: u32,
}

/// The last verification's result and end of a `backups` row, as SQL.
const LAST_RESULT: &str =
    "(SELECT v.result FROM backup_verifications v WHERE v.backup_id = backups.id ORDER BY v.id DESC LIMIT 1)";
const LAST_AT: &str =
    "(SELECT v.finished_at FROM backup_verifications v WHERE v.backup_id = backups.id ORDER BY v.id DESC LIMIT 1)";

/// The SQL condition of a verification state (`$5` is the outdated cutoff).
fn verification_sql(state: VerificationState) -> String {
    match state {
        VerificationState::None => format!("{LAST_RESULT} IS NULL"),
        VerificationState::Failed => format!("{LAST_RESULT} = 'failed'"),
        VerificationState::Ok => format!("{LAST_RESULT} = 'ok' AND {LAST_AT} > $5"),
        VerificationState::Outdated => format!("{LAST_RESULT} = 'ok' AND {LAST_AT} <= $5"),
    }
}

impl Store {
    pub async fn backups(&self, f: &BackupFilter) -> Result<Page<BackupRecord, BackupId>> {
        let limit = f.limit.clamp(1, 500);
        let (verified, cutoff) = match f.verification {
            Some((state, cutoff)) => (verification_sql(state), cutoff),
            // `$5` is bound either way (one statement shape); unfiltered, this is always true.
            None => ("$5 IS NOT NULL".to_owned(), Timestamp::now()),
        };
        let sql = format!(
            "SELECT {BACKUP_COLUMNS} FROM backups WHERE ($1 IS NULL OR host = $1) AND ($2 IS NULL OR vm = $2) \
             AND ($3 IS NULL OR state = $3) AND ($4 IS NULL OR id < $4) AND {verified} ORDER BY id DESC LIMIT {}",
            limit + 1
        );
        let rows: Vec<BackupRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, BackupRecord>(AssertSqlSafe(sql.as_str()))
                .bind(&f.host)
                .bind(&f.vm)
                .bind(f.state.map(BackupState::as_str))
                .bind(f.cursor)
                .bind(cutoff)
                .fetch_all(pool)
                .await
        })?;
        Ok(Page::of(rows, limit, |b| b.id))
    }

    pub async fn backup(&self, id: BackupId) -> Result<BackupRecord> {
        let sql = format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE id = $1");
        let row: Option<BackupRecord> = read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, BackupRecord>(AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await
        })?;
        row.ok_or_else(|| Error::not_found("backup_not_found", format!("backup {id}")))
    }

    /// The newest complete backup of `vm` on `host`.
    pub async fn newest_backup(&self, host: &str, vm: &str) -> Result<Option<BackupRecord>> {
        let sql = format!(
            "SELECT {BACKUP_COLUMNS} FROM backups WHERE host = $1 AND vm = $2 AND state = 'complete' \
             ORDER BY id DESC LIMIT 1"
        );
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, BackupRecord>(AssertSqlSafe(sql.as_str()))
                .bind(host)
                .bind(vm)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// The newest complete backup of each VM on `host`, by VM name.
    pub async fn newest_backups(&self, host: &str) -> Result<Vec<BackupRecord>> {
        let sql = format!(
            "SELECT {BACKUP_COLUMNS} FROM backups WHERE host = $1 AND state = 'complete' AND id = \
             (SELECT b2.id FROM backups b2 WHERE b2.host = backups.host AND b2.vm = backups.vm \
              AND b2.state = 'complete' ORDER BY b2.id DESC LIMIT 1) ORDER BY vm"
        );
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, BackupRecord>(AssertSqlSafe(sql.as_str())).bind(host).fetch_all(pool).await
        })?)
    }

    /// A backup's verifications, newest first.
    pub async fn verifications(&self, backup: BackupId) -> Result<Vec<VerificationRecord>> {
        Ok(read_db!(self, |pool, Db| {
            sqlx::query_as::<Db, VerificationRecord>(
                "SELECT id, backup_id, operation_id, level, result, code, started_at, finished_at, details \
                 FROM backup_verifications WHERE backup_id = $1 ORDER BY id DESC",
            )
            .bind(backup)
            .fetch_all(pool)
            .await
        })?)
    }
}

/// A verification to record.
#[derive(Debug, Clone, Copy)]
pub struct NewVerification<'a> {
    pub backup: BackupId,
    pub operation: OperationId,
    pub started_at: Timestamp,
    pub report: &'a VerifyReport,
}

impl super::Tx {
    /// Opens backup `id` as `creating` (a retry of the same operation finds it there).
    pub async fn insert_backup(
        &mut self,
        id: BackupId,
        op: OperationId,
        host: &str,
        vm: &str,
        dir: &str,
    ) -> Result<()> {
        let now = self.now();
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "INSERT INTO backups (id, host, vm, operation_id, state, dir, created_at) \
                 VALUES ($1, $2, $3, $4, 'creating', $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(host)
            .bind(vm)
            .bind(op)
            .bind(dir)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    /// Marks backup `id` complete with its manifest and the manifest file's sha256.
    pub async fn complete_backup(&mut self, id: BackupId, manifest: &Manifest, sha256: &str) -> Result<()> {
        let now = self.now();
        let value = serde_json::to_value(manifest).map_err(Error::internal)?;
        let size = i64::try_from(manifest.total_size()).unwrap_or(i64::MAX);
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "UPDATE backups SET state = 'complete', method = $2, size_bytes = $3, manifest = $4, \
                 manifest_sha256 = $5, error = NULL, finished_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(manifest.method.as_str())
            .bind(size)
            .bind(Json(value))
            .bind(sha256)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    /// Marks backup `id` failed (its partial files are already removed).
    pub async fn fail_backup(&mut self, id: BackupId, error: &str) -> Result<()> {
        let now = self.now();
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "UPDATE backups SET state = 'failed', error = $2, finished_at = $3 WHERE id = $1 AND state = 'creating'",
            )
            .bind(id)
            .bind(error)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    /// Marks backup `id` deleted (its files are removed); the row keeps its history.
    pub async fn delete_backup(&mut self, id: BackupId) -> Result<()> {
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>("UPDATE backups SET state = 'deleted' WHERE id = $1 AND state = 'complete'")
                .bind(id)
                .execute(&mut *c)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    pub async fn insert_verification(&mut self, v: NewVerification<'_>) -> Result<()> {
        let now = self.now();
        let details = serde_json::to_value(v.report).map_err(Error::internal)?;
        on_tx!(self, |c, Db| {
            sqlx::query::<Db>(
                "INSERT INTO backup_verifications (backup_id, operation_id, level, result, code, started_at, \
                 finished_at, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(v.backup)
            .bind(v.operation)
            .bind(v.report.level.as_str())
            .bind(v.report.result.as_str())
            .bind(v.report.code())
            .bind(v.started_at)
            .bind(now)
            .bind(Json(details))
            .execute(&mut *c)
            .await
            .map(drop)
        })?;
        Ok(())
    }
}
