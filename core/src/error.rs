//! The one transport-agnostic error type. The API maps it to HTTP in exactly
//! one place; its [`Error::code`] is the stable, machine-readable contract.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was rejected at the edge; nothing was written.
    #[error("{message}")]
    InvalidInput { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { code: &'static str, what: String },
    /// The request conflicts with the current state (idempotency, state machine).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A peer cannot take the request now (the database is unreachable, its
    /// disk is full); nothing was confirmed written and retrying later may succeed.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// A stored value the code does not know (a row edited by hand, or written
    /// by a newer version): the read fails loudly instead of guessing.
    #[error("{0}")]
    Corrupt(String),
    /// A bug or an unexpected peer answer. The cause is logged, never sent to clients.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub fn invalid(code: &'static str, message: impl fmt::Display) -> Self {
        Self::InvalidInput { code, message: message.to_string() }
    }

    pub fn not_found(code: &'static str, what: impl fmt::Display) -> Self {
        Self::NotFound { code, what: what.to_string() }
    }

    pub fn conflict(code: &'static str, message: impl fmt::Display) -> Self {
        Self::Conflict { code, message: message.to_string() }
    }

    /// The database did not answer (down, restarting, or every connection busy).
    pub fn database_unavailable(cause: impl fmt::Display) -> Self {
        Self::Unavailable { code: "database_unavailable", message: format!("the database is unavailable: {cause}") }
    }

    /// The database's disk is full: the write was refused and nothing was stored.
    pub fn storage_full(cause: impl fmt::Display) -> Self {
        Self::Unavailable { code: "storage_full", message: format!("the database's disk is full: {cause}") }
    }

    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    /// The stable machine-readable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::Corrupt(_) => "corrupt_record",
            Self::Unauthenticated(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Internal(_) => "internal",
        }
    }
}

/// What a database error means to the caller. A refused or unconfirmed write is
/// never an internal error: the client must learn that nothing may have been
/// stored and that retrying later is the cure.
impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => Self::database_unavailable(&err),
            sqlx::Error::ColumnDecode { index, source } if source.is::<crate::closed_set::UnknownValue>() => {
                Self::Corrupt(format!("column `{index}`: {source}"))
            }
            sqlx::Error::Decode(source) if source.is::<crate::closed_set::UnknownValue>() => {
                Self::Corrupt(source.to_string())
            }
            sqlx::Error::Database(db) => {
                match classify(db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some(), db.code().as_deref()) {
                    Some(Peer::StorageFull) => Self::storage_full(db.message()),
                    Some(Peer::Unavailable) => Self::database_unavailable(db.message()),
                    None => Self::internal(err),
                }
            }
            _ => Self::internal(err),
        }
    }
}

enum Peer {
    StorageFull,
    Unavailable,
}

/// SQLite reports (extended) result codes as numbers, PostgreSQL SQLSTATEs —
/// which may be all digits too (`53100`), so the backend says which is which.
fn classify(sqlite: bool, code: Option<&str>) -> Option<Peer> {
    let code = code?;
    if sqlite {
        let Ok(sqlite) = code.parse::<i32>() else { return None };
        // The primary code is the low byte of an extended one.
        return match sqlite & 0xff {
            13 => Some(Peer::StorageFull),                   // SQLITE_FULL
            5 | 6 | 10 | 14 | 15 => Some(Peer::Unavailable), // BUSY, LOCKED, IOERR, CANTOPEN, PROTOCOL
            _ => None,
        };
    }
    match code {
        "53100" => Some(Peer::StorageFull), // disk_full
        // insufficient resources, connection exceptions, the server shutting down or starting up
        c if c.starts_with("53") || c.starts_with("08") => Some(Peer::Unavailable),
        "57P01" | "57P02" | "57P03" | "57P05" => Some(Peer::Unavailable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Peer, classify};

    fn kind(sqlite: bool, code: &str) -> &'static str {
        match classify(sqlite, Some(code)) {
            Some(Peer::StorageFull) => "full",
            Some(Peer::Unavailable) => "unavailable",
            None => "other",
        }
    }

    #[test]
    fn database_errors_are_sorted_by_code() {
        // SQLite: primary codes and extended ones (low byte).
        assert_eq!(kind(true, "13"), "full");
        assert_eq!(kind(true, "5"), "unavailable");
        assert_eq!(kind(true, "778"), "unavailable", "SQLITE_IOERR_WRITE");
        assert_eq!(kind(true, "2067"), "other", "a unique violation is the caller's business");
        // PostgreSQL SQLSTATEs, all-digit ones included.
        assert_eq!(kind(false, "53100"), "full");
        assert_eq!(kind(false, "57P01"), "unavailable", "admin shutdown");
        assert_eq!(kind(false, "08006"), "unavailable", "connection failure");
        assert_eq!(kind(false, "53300"), "unavailable", "too many connections");
        assert_eq!(kind(false, "23505"), "other");
        assert!(classify(true, None).is_none());
    }
}
