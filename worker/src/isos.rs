//! The ISO catalogue of a host: `*.iso` files in `worker.iso_dir`, each checked
//! against its `<name>.sha256` sidecar when there is one. Hashes are cached by
//! (size, mtime), so a rescan only reads new or changed images. A symlink is
//! followed only while it stays inside `iso_dir`: the catalogue never reads,
//! hashes or reports a file elsewhere on the host.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
    sync::Mutex,
};

use hyperfleet_core::{Timestamp, store::IsoRecord};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct IsoScanner {
    cache: Mutex<HashMap<PathBuf, (u64, i64, String)>>,
}

impl IsoScanner {
    /// Scans `dir` (blocking: call it on the blocking pool); gives up with an
    /// error soon after `stop` is cancelled.
    pub fn scan(&self, host: &str, dir: &Path, stop: &CancellationToken) -> std::io::Result<Vec<IsoRecord>> {
        let root = dir.canonicalize()?;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("iso")) {
                continue;
            }
            let Some(real) = inside(&root, &path) else {
                tracing::warn!(path = %path.display(), "skipping an ISO that leads outside iso_dir");
                continue;
            };
            let meta = std::fs::metadata(&real)?;
            if !meta.is_file() {
                continue;
            }
            let modified: chrono::DateTime<chrono::Utc> = meta.modified()?.into();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let sidecar = sidecar_digest(&root, &path);
            let (status, sha) = match sidecar {
                None => ("unverified", None),
                Some(expected) => {
                    let actual = self.digest(&real, meta.len(), modified.timestamp_micros(), stop)?;
                    (if actual.eq_ignore_ascii_case(&expected) { "verified" } else { "mismatch" }, Some(actual))
                }
            };
            out.push(IsoRecord {
                host: host.to_owned(),
                name,
                path: path.display().to_string(),
                size_bytes: meta.len() as i64,
                modified_at: Timestamp(modified),
                checksum_status: status.into(),
                sha256: sha,
                updated_at: Timestamp::now(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn digest(&self, path: &Path, size: u64, mtime: i64, stop: &CancellationToken) -> std::io::Result<String> {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((s, m, d)) = cache.get(path)
            && *s == size
            && *m == mtime
        {
            return Ok(d.clone());
        }
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            if stop.is_cancelled() {
                return Err(std::io::Error::other("stopped"));
            }
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let digest = hex::encode(hasher.finalize());
        cache.insert(path.to_owned(), (size, mtime, digest.clone()));
        Ok(digest)
    }
}

/// Where `path` really is, if that is inside `root` (itself canonical).
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    path.canonicalize().ok().filter(|real| real.starts_with(root))
}

/// The hex digest in `<file>.sha256` (`sha256sum` format or the bare digest).
fn sidecar_digest(root: &Path, iso: &Path) -> Option<String> {
    let mut sidecar = iso.as_os_str().to_owned();
    sidecar.push(".sha256");
    let text = std::fs::read_to_string(inside(root, Path::new(&sidecar))?).ok()?;
    text.split_whitespace()
        .next()
        .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_sidecars() {
        let dir = std::env::temp_dir().join(format!("hf-isos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.iso"), b"alpha").unwrap();
        let good = hex::encode(Sha256::digest(b"alpha"));
        std::fs::write(dir.join("a.iso.sha256"), format!("{good}  a.iso\n")).unwrap();
        std::fs::write(dir.join("b.iso"), b"beta").unwrap();
        std::fs::write(dir.join("b.iso.sha256"), good.as_bytes()).unwrap();
        std::fs::write(dir.join("c.iso"), b"gamma").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        let isos = IsoScanner::default().scan("h", &dir, &CancellationToken::new()).unwrap();
        let status: Vec<_> = isos.iter().map(|i| (i.name.as_str(), i.checksum_status.as_str())).collect();
        assert_eq!(status, [("a.iso", "verified"), ("b.iso", "mismatch"), ("c.iso", "unverified")]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn symlinks_out_of_the_directory_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"shadow").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real.iso"), b"alpha").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real.iso"), dir.path().join("alias.iso")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("escape.iso")).unwrap();
        // A sidecar leading out is not read either.
        std::fs::write(dir.path().join("real.iso.sha256"), hex::encode(Sha256::digest(b"alpha"))).unwrap();
        std::fs::write(outside.path().join("digest"), hex::encode(Sha256::digest(b"alpha"))).unwrap();
        std::fs::write(dir.path().join("side.iso"), b"alpha").unwrap();
        std::os::unix::fs::symlink(outside.path().join("digest"), dir.path().join("side.iso.sha256")).unwrap();
        let isos = IsoScanner::default().scan("h", dir.path(), &CancellationToken::new()).unwrap();
        let status: Vec<_> = isos.iter().map(|i| (i.name.as_str(), i.checksum_status.as_str())).collect();
        assert_eq!(status, [("alias.iso", "unverified"), ("real.iso", "verified"), ("side.iso", "unverified")]);
    }

    #[test]
    fn a_hash_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let big = std::fs::File::create(dir.path().join("big.iso")).unwrap();
        big.set_len(1 << 40).unwrap(); // sparse: a terabyte of holes
        std::fs::write(dir.path().join("big.iso.sha256"), "0".repeat(64)).unwrap();
        let stop = CancellationToken::new();
        stop.cancel();
        assert!(IsoScanner::default().scan("h", dir.path(), &stop).is_err());
    }
}
