//! Hyperfleet's shared library: configuration, validated domain types, the
//! operation ledger (the [`store::Store`] over SQLite or PostgreSQL) and the
//! queue contract that the API, the workers and the scheduler agree on.
//!
//! It knows nothing of HTTP or libvirt: those live in `hyperfleet-api` and
//! `hyperfleet-worker`, which both depend on this crate and never on each other.

pub mod alert;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backoff;
pub mod backup;
pub mod backup_health;
pub mod backup_prune;
pub mod closed_set;
pub mod error;
pub mod health;
pub mod ids;
pub mod metrics;
pub mod operation;
pub mod outcome;
pub mod queue;
pub mod schedule;
pub mod session;
pub mod settings;
pub mod store;
pub mod time;
pub mod vm;

pub use error::{Error, Result};
pub use ids::{AlertEventId, AlertId, BackupId, NotificationId, OperationId, ScheduleId, SilenceId, TokenId};
pub use time::Timestamp;
