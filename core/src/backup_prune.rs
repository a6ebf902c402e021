//! Which backups a prune keeps: Proxmox Backup Server's keep options
//! (`keep_last`, `keep_daily`, `keep_weekly`, `keep_monthly`, `keep_yearly`,
//! periods in UTC), plus one rule of our own: the newest backup whose last
//! verification is ok is never deleted, so a prune never leaves a VM without
//! a backup known to be good. A pure function of the backups and the options.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{BackupId, Error, Timestamp};

/// Parameters of `backup.prune`: the backups of one VM on its host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneParams {
    pub vm: String,
    #[serde(default)]
    pub keep_last: u32,
    #[serde(default)]
    pub keep_daily: u32,
    #[serde(default)]
    pub keep_weekly: u32,
    #[serde(default)]
    pub keep_monthly: u32,
    #[serde(default)]
    pub keep_yearly: u32,
    /// Only say what would be deleted.
    #[serde(default)]
    pub dry_run: bool,
}

impl PruneParams {
    pub fn validate(&self) -> Result<(), Error> {
        crate::vm::VmName::parse(&self.vm)?;
        let keeps = [self.keep_last, self.keep_daily, self.keep_weekly, self.keep_monthly, self.keep_yearly];
        if keeps.iter().all(|k| *k == 0) {
            return Err(Error::invalid(
                "invalid_parameters",
                "a prune needs at least one keep option (keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly)",
            ));
        }
        if keeps.iter().any(|k| *k > 100_000) {
            return Err(Error::invalid("invalid_parameters", "keep options must be ≤ 100000"));
        }
        Ok(())
    }
}

/// A complete backup as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: BackupId,
    pub created_at: Timestamp,
    /// Its last verification is ok.
    pub verified_ok: bool,
}

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    Last,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    NewestVerified,
}

/// What a prune does: the backups kept (with why) and those deleted, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    pub keep: Vec<(BackupId, KeepReason)>,
    pub remove: Vec<BackupId>,
}

/// The period a backup falls in, for one keep option.
type Period = fn(&Candidate) -> String;

/// Plans a prune of `candidates` (any order).
pub fn plan(candidates: &[Candidate], p: &PruneParams) -> PrunePlan {
    let mut list = candidates.to_vec();
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let mut marks: BTreeMap<BackupId, Option<KeepReason>> = BTreeMap::new();
    let rules: [(u32, KeepReason, Period); 5] = [
        (p.keep_last, KeepReason::Last, |c| c.id.to_string()),
        (p.keep_daily, KeepReason::Daily, |c| c.created_at.0.format("%Y-%m-%d").to_string()),
        (p.keep_weekly, KeepReason::Weekly, |c| c.created_at.0.format("%G-W%V").to_string()),
        (p.keep_monthly, KeepReason::Monthly, |c| c.created_at.0.format("%Y-%m").to_string()),
        (p.keep_yearly, KeepReason::Yearly, |c| c.created_at.0.format("%Y").to_string()),
    ];
    for (keep, reason, period) in rules {
        if keep > 0 {
            mark(&mut marks, &list, keep as usize, reason, period);
        }
    }
    if let Some(newest_ok) = list.iter().find(|c| c.verified_ok) {
        marks.entry(newest_ok.id).or_insert(None).get_or_insert(KeepReason::NewestVerified);
    }
    let mut out = PrunePlan::default();
    for c in &list {
        match marks.get(&c.id).copied().flatten() {
            Some(reason) => out.keep.push((c.id, reason)),
            None => out.remove.push(c.id),
        }
    }
    out
}

/// One keep option, as Proxmox Backup Server applies it: newest first, the
/// first backup of each of the `keep` newest periods not already covered by a
/// backup an earlier option kept; the others of a counted period are removed.
fn mark(
    marks: &mut BTreeMap<BackupId, Option<KeepReason>>,
    list: &[Candidate],
    keep: usize,
    reason: KeepReason,
    period: Period,
) {
    let covered: BTreeSet<String> =
        list.iter().filter(|c| matches!(marks.get(&c.id), Some(Some(_)))).map(period).collect();
    let mut counted = BTreeSet::new();
    for c in list {
        if marks.contains_key(&c.id) {
            continue;
        }
        let key = period(c);
        if covered.contains(&key) {
            continue;
        }
        if counted.contains(&key) {
            marks.insert(c.id, None);
        } else {
            if counted.len() >= keep {
                break;
            }
            counted.insert(key);
            marks.insert(c.id, Some(reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> Candidate {
        let t = Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        Candidate { id: BackupId(uuid::Uuid::now_v7()), created_at: Timestamp(t), verified_ok: false }
    }

    fn kept(plan: &PrunePlan) -> Vec<(BackupId, KeepReason)> {
        plan.keep.clone()
    }

    #[test]
    fn keep_last_keeps_the_newest_and_removes_the_rest() {
        let list = [at(2026, 1, 1, 0), at(2026, 1, 2, 0), at(2026, 1, 3, 0)];
        let p = plan(&list, &PruneParams { keep_last: 2, ..Default::default() });
        assert_eq!(kept(&p), [(list[2].id, KeepReason::Last), (list[1].id, KeepReason::Last)]);
        assert_eq!(p.remove, [list[0].id]);
    }

    #[test]
    fn periods_keep_the_newest_backup_of_each_and_skip_periods_already_covered() {
        // Two a day for three days, one the week before.
        let list = [
            at(2026, 3, 2, 1),
            at(2026, 3, 9, 1),
            at(2026, 3, 9, 12),
            at(2026, 3, 10, 1),
            at(2026, 3, 10, 12),
            at(2026, 3, 11, 1),
            at(2026, 3, 11, 12),
        ];
        let p = plan(&list, &PruneParams { keep_daily: 2, ..Default::default() });
        assert_eq!(kept(&p), [(list[6].id, KeepReason::Daily), (list[4].id, KeepReason::Daily)]);
        assert_eq!(p.remove.len(), 5);

        // keep_last 1 covers 11 March; keep_daily 2 then keeps 10 and 9 March; weekly 2 adds the week before.
        let p = plan(&list, &PruneParams { keep_last: 1, keep_daily: 2, keep_weekly: 2, ..Default::default() });
        assert_eq!(
            kept(&p),
            [
                (list[6].id, KeepReason::Last),
                (list[4].id, KeepReason::Daily),
                (list[2].id, KeepReason::Daily),
                (list[0].id, KeepReason::Weekly),
            ]
        );
        let p = plan(&list, &PruneParams { keep_monthly: 1, keep_yearly: 5, ..Default::default() });
        assert_eq!(kept(&p), [(list[6].id, KeepReason::Monthly)], "the year is covered by the month's backup");
    }

    #[test]
    fn the_newest_verified_backup_is_never_removed() {
        let mut list = [at(2026, 1, 1, 0), at(2026, 1, 2, 0), at(2026, 1, 3, 0), at(2026, 1, 4, 0)];
        list[0].verified_ok = true;
        list[1].verified_ok = true;
        let p = plan(&list, &PruneParams { keep_last: 1, ..Default::default() });
        assert_eq!(kept(&p), [(list[3].id, KeepReason::Last), (list[1].id, KeepReason::NewestVerified)]);
        assert_eq!(p.remove, [list[2].id, list[0].id]);
    }

    #[test]
    fn a_prune_needs_a_vm_and_a_keep_option() {
        assert!(PruneParams { vm: "web".into(), keep_last: 1, ..Default::default() }.validate().is_ok());
        assert!(PruneParams { vm: "web".into(), ..Default::default() }.validate().is_err());
        assert!(PruneParams { vm: "../x".into(), keep_last: 1, ..Default::default() }.validate().is_err());
    }
}
