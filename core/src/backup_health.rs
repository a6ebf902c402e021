//! The backup health checks of one VM, as pure policy: `backup_freshness`
//! (its newest complete backup older than `backups.max_age_h` warns, twice
//! that is an error) and `backup_unverified` (that backup's derived
//! verification: `failed` is an error, `none` or `outdated` a warning).
//! They run with the host's other checks, through the same hysteresis.

use crate::{
    Timestamp,
    backup::VerificationState,
    health::{Measurement, Status, Threshold},
};

/// The checks of `vm`, whose newest complete backup was created at `created_at`
/// and whose verification state is `verification`.
pub fn vm_checks(
    vm: &str,
    created_at: Timestamp,
    verification: VerificationState,
    now: Timestamp,
    max_age_h: u32,
) -> [Measurement; 2] {
    let age_h = now.millis_since(created_at).max(0.0) / 3_600_000.0;
    let limit = f64::from(max_age_h);
    let freshness = Measurement::measured(
        &format!("backup_freshness:{vm}"),
        age_h,
        "h",
        Threshold::new(limit, 2.0 * limit, limit, 0),
        true,
        format!("the newest complete backup of {vm} is {age_h:.1} h old (limit {max_age_h} h)"),
    );
    let (status, why) = match verification {
        VerificationState::Ok => (Status::Ok, "verified ok"),
        VerificationState::Failed => (Status::Error, "its last verification failed"),
        VerificationState::None => (Status::Warn, "never verified"),
        VerificationState::Outdated => (Status::Warn, "its last ok verification is outdated"),
    };
    let unverified =
        Measurement::plain(&format!("backup_unverified:{vm}"), status, format!("the newest backup of {vm}: {why}"));
    [freshness, unverified]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Raw;

    #[test]
    fn age_warns_past_the_limit_and_errs_past_twice_it() {
        let now = Timestamp::now();
        let hours = |h: u64| now.minus(std::time::Duration::from_secs(h * 3600));
        let raw = |h, v| vm_checks("web", hours(h), v, now, 24).map(|m| m.raw);
        assert_eq!(raw(1, VerificationState::Ok), [Raw::Level(Status::Ok), Raw::Level(Status::Ok)]);
        assert_eq!(raw(30, VerificationState::None), [Raw::Level(Status::Warn), Raw::Level(Status::Warn)]);
        assert_eq!(raw(49, VerificationState::Failed), [Raw::Level(Status::Error), Raw::Level(Status::Error)]);
        assert_eq!(raw(2, VerificationState::Outdated)[1], Raw::Level(Status::Warn));
        let [f, u] = vm_checks("web", hours(30), VerificationState::Failed, now, 24);
        assert_eq!((f.check.as_str(), u.check.as_str()), ("backup_freshness:web", "backup_unverified:web"));
        assert_eq!((f.unit.as_deref(), f.value.map(f64::round)), (Some("h"), Some(30.0)));
        assert!(u.message.contains("failed"), "{}", u.message);
    }
}
