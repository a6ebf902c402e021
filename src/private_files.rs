//! The SQLite database holds token hashes, the audit log and every
//! operation: its directory is created 0700 and its files 0600, and an
//! existing database readable by others is tightened (with a warning). SQLite
//! gives its `-wal` and `-shm` files the database file's mode.

use std::{
    fs::{DirBuilder, OpenOptions, Permissions},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::Context;

/// Prepares the SQLite file behind `database_url` (nothing for PostgreSQL).
pub fn prepare(database_url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_path(database_url) else { return Ok(()) };
    let path = Path::new(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    if !path.exists() {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file,
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the database was readable by others; now 0600"
            );
            std::fs::set_permissions(&file, Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {file}"))?;
        }
    }
    Ok(())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then_some(path)
}
