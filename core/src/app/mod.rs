//! The application layer: the use cases the API, the worker and the CLI call.
//! Each composes the domain's policy (pure functions) with the store's reads
//! and writes, and writes a change together with the alert it implies and its
//! audit entry in **one** transaction. Handlers call this layer, never the
//! store; the store never calls back into policy.
//!
//! ```text
//!   api handler ──► app use case ──► domain policy (pure: what should happen)
//!                        │
//!                        └────────► store (SQL: write what was decided, one Tx)
//! ```

mod admin;
mod audit;
mod backups;
mod bulk;
mod ledger;
mod metrics;
mod overview;
mod reads;
mod sessions;
mod submit;

use std::sync::Arc;

pub use admin::Actor;
pub use backups::BackupView;
pub use bulk::{BULK_CAP, BulkAction, BulkReport};
pub use ledger::{NextClaims, ReapReport};
pub use overview::{CHART_BUCKET, ChartBar, OVERVIEW_WINDOW, Overview};
pub use sessions::Session;
pub use submit::Origin;

use crate::{
    Error, Result, Timestamp, audit::AuditKey, session::SessionPolicy, settings::RetentionSettings, store::Store,
};

/// The use cases, over one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    store: Store,
    retention: Arc<RetentionSettings>,
    /// Seals the audit chain; processes that make admin changes (API,
    /// scheduler, CLI) have it, workers do not need it.
    audit_key: Option<Arc<AuditKey>>,
    sessions: SessionPolicy,
    /// `backups.reverify_after_days`: when an ok verification becomes `outdated`.
    reverify_after_days: u32,
}

impl App {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            retention: Arc::default(),
            audit_key: None,
            sessions: SessionPolicy::default(),
            reverify_after_days: 7,
        }
    }

    pub fn with_audit_key(mut self, key: AuditKey) -> Self {
        self.audit_key = Some(Arc::new(key));
        self
    }

    fn audit_key(&self) -> Result<&AuditKey> {
        self.audit_key.as_deref().ok_or_else(|| Error::internal("this process has no audit key"))
    }

    /// How long dashboard sessions live.
    pub fn with_session_policy(mut self, policy: SessionPolicy) -> Self {
        self.sessions = policy;
        self
    }

    /// `backups.reverify_after_days`: when an ok verification becomes `outdated`.
    pub fn with_reverify_after_days(mut self, days: u32) -> Self {
        self.reverify_after_days = days;
        self
    }

    pub fn with_retention(mut self, retention: RetentionSettings) -> Self {
        self.retention = Arc::new(retention);
        self
    }

    /// The store underneath, for the components that run the ledger itself
    /// (the worker's queue transport, the scheduler's reconcilers, readiness).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.store.now()
    }
}
