//! What the front door reads, and the small operator actions that are one
//! write each (cancel, retry, acknowledge, resolve, a manual alert). The
//! store answers; listing them here keeps every handler on this layer.

use super::App;
use crate::{
    AlertEventId, AlertId, NotificationId, OperationId, Result, ScheduleId,
    alert::{Alert, AlertEvent, EventKind, NewAlert, Notification, Silence, SuppressReason},
    auth::Principal,
    operation::{Attempt, Operation},
    store::{
        AlertFilter, AlertPage, AuditEvent, Change, ChannelStats, FireRecord, HealthEventRecord, HealthResultRecord,
        HealthRunRecord, HealthStateRecord, HostRecord, IsoRecord, OperationFilter, OperationPage, Page, ReconcilerRun,
        ScheduleRecord, TokenRecord, VmCursor, VmFilter, VmRecord,
    },
};

/// `App` methods that answer straight from the store.
macro_rules! from_store {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl App {
            $($(#[$doc])* pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                self.store.$name($($arg),*).await
            })*
        }
    };
}

from_store! {
    fn operation(&self, id: OperationId) -> Operation;
    fn attempts(&self, id: OperationId) -> Vec<Attempt>;
    fn list_operations(&self, filter: &OperationFilter) -> OperationPage;
    /// Operations changed at or after `since`, oldest change first (the dashboard's change feed).
    fn operations_changed_since(&self, since: crate::Timestamp, limit: u32) -> Vec<Change>;
    /// The operations among `ids` that exist, newest first.
    fn operations_by_ids(&self, ids: &[OperationId]) -> Vec<Operation>;
    /// Asks a running operation to stop (a queued one is cancelled at once).
    fn cancel(&self, id: OperationId, by: &str) -> Operation;
    /// A new operation with the same request, linked to the one it retries.
    fn retry(&self, id: OperationId, requested_by: &str, request_id: Option<String>) -> Operation;
    /// The operations created to retry this one, oldest first.
    fn retries_of(&self, id: OperationId) -> Vec<Operation>;
    /// The alerts this operation raised or resolved, newest first.
    fn alerts_of_operation(&self, id: OperationId) -> Vec<Alert>;
    fn hosts(&self) -> Vec<HostRecord>;
    fn host(&self, name: &str) -> HostRecord;
    fn vms(&self) -> Vec<VmRecord>;
    /// A page of the inventory, by name then host.
    fn list_vms(&self, f: &VmFilter) -> Page<VmRecord, VmCursor>;
    fn vm(&self, name: &str, host: Option<&str>) -> VmRecord;
    fn isos(&self) -> Vec<IsoRecord>;
    fn schedules(&self) -> Vec<ScheduleRecord>;
    fn schedule(&self, id: ScheduleId) -> ScheduleRecord;
    fn fires(&self, id: ScheduleId, limit: u32) -> Vec<FireRecord>;
    fn health_runs(&self, host: Option<&str>, limit: u32) -> Vec<HealthRunRecord>;
    fn health_run(&self, id: OperationId) -> (HealthRunRecord, Vec<HealthResultRecord>);
    fn health_states(&self, host: Option<&str>) -> Vec<HealthStateRecord>;
    fn health_events(&self, limit: u32) -> Vec<HealthEventRecord>;
    fn host_health_events(&self, host: &str, limit: u32) -> Vec<HealthEventRecord>;
    /// VMs per host and state.
    fn vm_state_counts(&self) -> Vec<(String, crate::vm::VmState, i64)>;
    fn alerts(&self, f: &AlertFilter) -> AlertPage;
    fn alert(&self, id: AlertId) -> Alert;
    /// A page of an alert's history, oldest first.
    fn alert_events(&self, id: AlertId, after: Option<AlertEventId>, limit: u32) -> Page<AlertEvent, AlertEventId>;
    /// A page of an alert's notifications, oldest first.
    fn alert_notifications(&self, id: AlertId, after: Option<NotificationId>, limit: u32) -> Page<Notification, NotificationId>;
    fn suppressed_counts(&self, alert: AlertId) -> Vec<(SuppressReason, i64)>;
    fn channel_stats(&self, channel: &str) -> ChannelStats;
    /// A manual alert (source `manual`), or one more occurrence of it.
    fn raise_alert(&self, new: &NewAlert) -> (Alert, EventKind);
    fn acknowledge_alert(&self, id: AlertId, actor: &str) -> Alert;
    fn resolve_alert(&self, id: AlertId, actor: &str) -> Alert;
    fn silences(&self, expired: bool) -> Vec<Silence>;
    fn tokens(&self) -> Vec<TokenRecord>;
    fn authenticate(&self, presented: &str) -> Principal;
    fn audit_events(&self, limit: u32) -> Vec<AuditEvent>;
    /// The scheduler's reconcilers and their last runs.
    fn reconciler_runs(&self) -> Vec<ReconcilerRun>;
    /// Whether this process can serve: the database answers, migrations are applied, queues are served.
    fn readiness(&self) -> ();
}
