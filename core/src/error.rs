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
    /// A peer (the database) is unreachable; retrying later may succeed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
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

    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    /// The stable machine-readable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { code, .. } | Self::NotFound { code, .. } | Self::Conflict { code, .. } => code,
            Self::Unauthenticated(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(err.to_string())
            }
            other => Self::internal(other),
        }
    }
}

impl From<apalis_sqlite::Error> for Error {
    fn from(err: apalis_sqlite::Error) -> Self {
        Self::internal(err)
    }
}

impl From<apalis_postgres::Error> for Error {
    fn from(err: apalis_postgres::Error) -> Self {
        Self::internal(err)
    }
}
