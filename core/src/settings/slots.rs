//! `[worker.slots]`: each class of work has slots of its own in every worker.

use serde::{Deserialize, Serialize};

/// `[worker.slots]`: how many operations of each class one worker runs at once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSettings {
    /// VM power actions.
    #[serde(default = "default_vm_slots")]
    pub vm: usize,
    #[serde(default = "default_health_slots")]
    pub health: usize,
    /// Alert deliveries.
    #[serde(default = "default_alerts_slots")]
    pub alerts: usize,
    /// Backups and their verification.
    #[serde(default = "default_backup_slots")]
    pub backup: usize,
    /// `noop` and other diagnostics.
    #[serde(default = "default_diagnostics_slots")]
    pub diagnostics: usize,
    /// Ledger pruning.
    #[serde(default = "default_housekeeping_slots")]
    pub housekeeping: usize,
}

impl SlotSettings {
    pub fn of(&self, class: crate::operation::WorkClass) -> usize {
        use crate::operation::WorkClass;
        match class {
            WorkClass::Vm => self.vm,
            WorkClass::Health => self.health,
            WorkClass::Alerts => self.alerts,
            WorkClass::Backup => self.backup,
            WorkClass::Diagnostics => self.diagnostics,
            WorkClass::Housekeeping => self.housekeeping,
        }
    }
}

impl Default for SlotSettings {
    fn default() -> Self {
        Self {
            vm: default_vm_slots(),
            health: default_health_slots(),
            alerts: default_alerts_slots(),
            backup: default_backup_slots(),
            diagnostics: default_diagnostics_slots(),
            housekeeping: default_housekeeping_slots(),
        }
    }
}

fn default_vm_slots() -> usize {
    16
}
fn default_health_slots() -> usize {
    2
}
fn default_alerts_slots() -> usize {
    8
}
fn default_backup_slots() -> usize {
    2
}
fn default_diagnostics_slots() -> usize {
    16
}
fn default_housekeeping_slots() -> usize {
    1
}
