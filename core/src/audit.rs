//! The audit chain's keyed MAC and its checkpoints. Each audit row is sealed
//! with HMAC-SHA256 over its content and the previous row's seal, under a key
//! that lives outside the database (`[audit] key`, or a file Hyperfleet
//! creates beside its data): someone who can write the database can delete or
//! edit rows but cannot re-seal them. A checkpoint — the head's sequence and
//! seal, itself sealed — kept outside the database also catches what the
//! chain alone cannot: rows cut off its end.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{Error, Result};

/// The key the audit chain is sealed with. Never shown.
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

/// Bytes a key must have at least.
const MIN_KEY_BYTES: usize = 16;

impl AuditKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(Error::invalid(
                "invalid_audit_key",
                format!("the audit key needs at least {MIN_KEY_BYTES} bytes"),
            ));
        }
        Ok(Self(bytes))
    }

    /// The key in `file`, created (32 random bytes, hex, mode 0600) if it does not exist.
    pub fn load_or_create(file: &Path) -> Result<Self> {
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        match std::fs::read_to_string(file) {
            Ok(text) => return Self::new(text.trim().as_bytes()),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::internal(e)),
            Err(_) => {}
        }
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::internal)?;
        }
        let key = hex::encode(rand::random::<[u8; 32]>());
        let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file);
        match created {
            Ok(mut f) => {
                f.write_all(key.as_bytes()).and_then(|()| f.sync_all()).map_err(Error::internal)?;
                tracing::info!(file = %file.display(), "created the audit key; keep a copy with your backups");
                Self::new(key.into_bytes())
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(file),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// HMAC-SHA256 of `message`, hex.
    pub fn seal(&self, message: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, message: &[u8], seal: &str) -> bool {
        let Ok(expected) = hex::decode(seal) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(message);
        mac.verify_slice(&expected).is_ok()
    }
}

/// The head of the chain at one moment, sealed so that it cannot be forged
/// without the key. Kept outside the database (a file, a log line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The head row's id; 0 for an empty log.
    pub sequence: i64,
    /// The head row's seal.
    pub hash: String,
    /// The checkpoint's own seal over `sequence` and `hash`.
    pub mac: String,
}

impl Checkpoint {
    pub fn new(key: &AuditKey, sequence: i64, hash: &str) -> Self {
        Self { sequence, hash: hash.to_owned(), mac: key.seal(Self::message(sequence, hash).as_bytes()) }
    }

    /// Whether this checkpoint was sealed with `key`.
    pub fn is_genuine(&self, key: &AuditKey) -> bool {
        key.verify(Self::message(self.sequence, &self.hash).as_bytes(), &self.mac)
    }

    fn message(sequence: i64, hash: &str) -> String {
        format!("hyperfleet audit checkpoint\n{sequence}\n{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_cannot_be_forged_without_the_key() {
        let key = AuditKey::new(*b"0123456789abcdef0123").unwrap();
        let other = AuditKey::new(*b"fedcba9876543210fedc").unwrap();
        let c = Checkpoint::new(&key, 7, "ab");
        assert!(c.is_genuine(&key));
        assert!(!c.is_genuine(&other));
        assert!(!Checkpoint { sequence: 6, ..c.clone() }.is_genuine(&key));
        assert!(AuditKey::new(*b"short").is_err());
        assert_eq!(format!("{key:?}"), "AuditKey(***)");
    }

    #[test]
    fn a_missing_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys/audit.key");
        let a = AuditKey::load_or_create(&file).unwrap();
        let b = AuditKey::load_or_create(&file).unwrap();
        assert_eq!(a.seal(b"x"), b.seal(b"x"));
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
