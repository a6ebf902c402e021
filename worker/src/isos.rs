//! The ISO catalogue of a host: `*.iso` files in `worker.iso_dir`, each checked
//! against its `<name>.sha256` sidecar when there is one. Hashes are cached by
//! (size, mtime), so a rescan only reads new or changed images.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
    sync::Mutex,
};

use hyperfleet_core::{Timestamp, store::IsoRecord};
use sha2::{Digest, Sha256};

#[derive(Debug, Default)]
pub struct IsoScanner {
    cache: Mutex<HashMap<PathBuf, (u64, i64, String)>>,
}

impl IsoScanner {
    /// Scans `dir` (blocking: call it on the blocking pool).
    pub fn scan(&self, host: &str, dir: &Path) -> std::io::Result<Vec<IsoRecord>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("iso")) || !path.is_file() {
                continue;
            }
            let meta = std::fs::metadata(&path)?;
            let modified: chrono::DateTime<chrono::Utc> = meta.modified()?.into();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let sidecar = sidecar_digest(&path);
            let (status, sha) = match sidecar {
                None => ("unverified", None),
                Some(expected) => {
                    let actual = self.digest(&path, meta.len(), modified.timestamp_micros())?;
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

    fn digest(&self, path: &Path, size: u64, mtime: i64) -> std::io::Result<String> {
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

/// The hex digest in `<file>.sha256` (`sha256sum` format or the bare digest).
fn sidecar_digest(iso: &Path) -> Option<String> {
    let mut sidecar = iso.as_os_str().to_owned();
    sidecar.push(".sha256");
    let text = std::fs::read_to_string(PathBuf::from(sidecar)).ok()?;
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
        let isos = IsoScanner::default().scan("h", &dir).unwrap();
        let status: Vec<_> = isos.iter().map(|i| (i.name.as_str(), i.checksum_status.as_str())).collect();
        assert_eq!(status, [("a.iso", "verified"), ("b.iso", "mismatch"), ("c.iso", "unverified")]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
