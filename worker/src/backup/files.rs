//! The backup directory layout, hashing, and writes that reach the disk
//! (file and directory fsync) before a backup is called complete.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use tokio_util::sync::CancellationToken;

use hyperfleet_core::{
    BackupId,
    backup::ManifestFile,
    operation::{ErrorClass, JobFailure},
};

/// `<dir>/<vm>/<id>/` and its `.partial` sibling.
#[derive(Debug, Clone)]
pub struct Layout {
    pub vm_dir: PathBuf,
    pub done: PathBuf,
    pub partial: PathBuf,
}

impl Layout {
    pub fn new(base: &Path, vm: &str, id: BackupId) -> Self {
        let vm_dir = base.join(vm);
        Self { done: vm_dir.join(id.to_string()), partial: vm_dir.join(format!("{id}.partial")), vm_dir }
    }
}

/// An I/O failure as a job failure: a full disk is permanent (`no_space`), the rest transient.
pub fn io_failure(what: &str, e: &std::io::Error) -> JobFailure {
    if e.raw_os_error() == Some(nix::libc::ENOSPC) {
        JobFailure::new(ErrorClass::Permanent, "no_space", format!("{what}: {e}"))
    } else {
        JobFailure::new(ErrorClass::Transient, "backup_io", format!("{what}: {e}"))
    }
}

/// Size and sha256 of `path` (blocking).
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    hash_file_until(path, &CancellationToken::new())
}

/// Size and sha256 of `path` (blocking); `Interrupted` as soon as `stop` is cancelled.
pub fn hash_file_until(path: &Path, stop: &CancellationToken) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        if stop.is_cancelled() {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "cancel requested"));
        }
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Fsyncs `path` (a file, or a directory so that its entries are durable).
pub fn sync_path(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Writes `bytes` to `path` and fsyncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Fsyncs and hashes each of `rel` (paths relative to `dir`), for the manifest;
/// `Interrupted` when `stop` is cancelled meanwhile.
pub fn sync_and_hash(dir: &Path, rel: &[String], stop: &CancellationToken) -> std::io::Result<Vec<ManifestFile>> {
    rel.iter()
        .map(|p| {
            let full = dir.join(p);
            sync_path(&full)?;
            let (size, sha256) = hash_file_until(&full, stop)?;
            Ok(ManifestFile { path: p.clone(), size, sha256 })
        })
        .collect()
}

/// Every regular file under `dir`, relative to it, sorted.
pub fn list_files(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Removes `dir` and everything in it, if it exists.
pub fn remove_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_lists_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("disks")).unwrap();
        write_synced(&dir.path().join("disks/vda.qcow2"), b"abc").unwrap();
        write_synced(&dir.path().join("domain.xml"), b"").unwrap();
        assert_eq!(list_files(dir.path()).unwrap(), ["disks/vda.qcow2", "domain.xml"]);
        let stop = CancellationToken::new();
        let files = sync_and_hash(dir.path(), &["disks/vda.qcow2".into()], &stop).unwrap();
        assert_eq!(files[0].size, 3);
        assert_eq!(files[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        stop.cancel();
        let e = sync_and_hash(dir.path(), &["disks/vda.qcow2".into()], &stop).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted);
        remove_dir(dir.path()).unwrap();
        remove_dir(dir.path()).unwrap();
    }
}
