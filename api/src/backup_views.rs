//! What the backup endpoints send.

use chrono::{DateTime, Utc};
use hyperfleet_core::{
    app::BackupView as Backup,
    backup::{BackupMethod, BackupState, VerificationState, VerifyLevel, VerifyResult},
    store::VerificationRecord,
};
use poem_openapi::Object;

/// A backup. `verification` is derived from its last verification: `none`,
/// `ok`, `failed`, or `outdated` (older than `backups.reverify_after_days`).
#[derive(Debug, Clone, Object)]
pub struct BackupView {
    pub id: uuid::Uuid,
    pub host: String,
    pub vm: String,
    /// The `backup.create` operation that wrote it.
    pub operation_id: uuid::Uuid,
    pub state: BackupState,
    #[oai(skip_serializing_if_is_none)]
    pub method: Option<BackupMethod>,
    /// Its directory on its host.
    pub dir: String,
    #[oai(skip_serializing_if_is_none)]
    pub size_bytes: Option<i64>,
    /// The sha256 of `manifest.json` as written: verification compares the file with it.
    #[oai(skip_serializing_if_is_none)]
    pub manifest_sha256: Option<String>,
    pub verification: VerificationState,
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The manifest: method, consistency, versions, disks and every file with its size and sha256 (`GET` of one backup).
    #[oai(skip_serializing_if_is_none)]
    pub manifest: Option<serde_json::Value>,
    /// Every verification, newest first (`GET` of one backup).
    #[oai(skip_serializing_if_is_none)]
    pub verifications: Option<Vec<VerificationView>>,
}

impl From<Backup> for BackupView {
    fn from(b: Backup) -> Self {
        let r = b.record;
        Self {
            id: r.id.0,
            host: r.host,
            vm: r.vm,
            operation_id: r.operation_id.0,
            state: r.state,
            method: r.method,
            dir: r.dir,
            size_bytes: r.size_bytes,
            manifest_sha256: r.manifest_sha256,
            verification: b.verification,
            error: r.error,
            created_at: r.created_at.0,
            finished_at: r.finished_at.map(|t| t.0),
            manifest: None,
            verifications: None,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct VerificationView {
    /// The operation that verified (a `backup.verify`, or the `backup.create` that verified its new backup).
    pub operation_id: uuid::Uuid,
    pub level: VerifyLevel,
    pub result: VerifyResult,
    /// Why it failed: `manifest_tampered`, `manifest_missing`, `file_missing`, `size_mismatch`, `checksum_mismatch`, `image_corrupt`, `boot_timeout`.
    #[oai(skip_serializing_if_is_none)]
    pub code: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Findings (each with its code, the file it concerns, a message), warnings (files the manifest does not list, leaks) and counts;
    /// level `boot` adds `boot`: the marker, `timeout_s`, `marker_after_ms` (absent when it never appeared) and `console_tail` (the console's last 4 KiB).
    pub details: serde_json::Value,
}

impl From<VerificationRecord> for VerificationView {
    fn from(v: VerificationRecord) -> Self {
        Self {
            operation_id: v.operation_id.0,
            level: v.level,
            result: v.result,
            code: v.code,
            started_at: v.started_at.0,
            finished_at: v.finished_at.0,
            details: v.details.0,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct BackupPageView {
    pub items: Vec<BackupView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}
