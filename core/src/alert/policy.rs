//! The notification policy: what one event of one alert means for one channel.

use std::time::Duration;

use super::{Alert, EventKind, Matcher, NotifyEvent, Severity, SuppressReason, all_match};
use crate::Timestamp;

/// A channel as the router sees it (no secrets, no transport).
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub channel: &'a str,
    pub min_severity: Severity,
    pub matchers: &'a [Matcher],
    pub send_resolved: bool,
}

/// What a channel has already been told about an alert.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelHistory {
    /// When the last firing notification to this channel was sent (not suppressed).
    pub last_firing_sent: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send(NotifyEvent),
    Suppress(SuppressReason),
    /// Nothing to say, nothing to count: a resolve for a channel that never
    /// heard of the alert, or that does not want resolves.
    Skip,
}

/// The notification policy for one event of one alert on one channel.
///
/// - `fired` and `escalated` (severity went up) notify at once;
/// - `repeated` notifies only when the channel heard nothing of this alert for
///   the severity's repeat interval, and never once the alert is acknowledged;
/// - `resolved` notifies channels that were told it fired, if they want resolves;
/// - silences mute everything they match; routing (severity, matchers) comes first.
pub fn decide(
    route: &Route<'_>,
    alert: &Alert,
    event: EventKind,
    silenced: bool,
    history: ChannelHistory,
    repeat: Duration,
    now: Timestamp,
) -> Decision {
    if alert.exclude_channel.as_deref() == Some(route.channel) {
        return Decision::Skip;
    }
    if event == EventKind::Resolved {
        if !route.send_resolved || history.last_firing_sent.is_none() {
            return Decision::Skip;
        }
        return if silenced {
            Decision::Suppress(SuppressReason::Silenced)
        } else {
            Decision::Send(NotifyEvent::Resolved)
        };
    }
    if event == EventKind::Acknowledged {
        return Decision::Skip;
    }
    if alert.severity < route.min_severity {
        return Decision::Suppress(SuppressReason::BelowSeverity);
    }
    if !all_match(route.matchers, &alert.facts()) {
        return Decision::Suppress(SuppressReason::Unmatched);
    }
    if silenced {
        return Decision::Suppress(SuppressReason::Silenced);
    }
    if event == EventKind::Repeated {
        if alert.acknowledged_at.is_some() {
            return Decision::Suppress(SuppressReason::Acknowledged);
        }
        if let Some(last) = history.last_firing_sent
            && now.millis_since(last) < repeat.as_millis() as f64
        {
            return Decision::Suppress(SuppressReason::Cooldown);
        }
    }
    Decision::Send(NotifyEvent::Firing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::sample_alert as alert;

    const ROUTE: Route<'static> =
        Route { channel: "c", min_severity: Severity::Warning, matchers: &[], send_resolved: true };

    #[test]
    fn policy() {
        let now = Timestamp::now();
        let repeat = Duration::from_secs(300);
        let a = alert(Severity::Critical);
        let never = ChannelHistory::default();
        let recent = ChannelHistory { last_firing_sent: Some(now.minus(Duration::from_secs(10))) };
        let old = ChannelHistory { last_firing_sent: Some(now.minus(Duration::from_secs(301))) };
        let d = |a: &Alert, e, s, h| decide(&ROUTE, a, e, s, h, repeat, now);
        assert_eq!(d(&a, EventKind::Fired, false, never), Decision::Send(NotifyEvent::Firing));
        assert_eq!(d(&a, EventKind::Repeated, false, recent), Decision::Suppress(SuppressReason::Cooldown));
        assert_eq!(d(&a, EventKind::Repeated, false, old), Decision::Send(NotifyEvent::Firing));
        assert_eq!(d(&a, EventKind::Escalated, false, recent), Decision::Send(NotifyEvent::Firing));
        assert_eq!(d(&a, EventKind::Fired, true, never), Decision::Suppress(SuppressReason::Silenced));
        assert_eq!(d(&a, EventKind::Resolved, false, never), Decision::Skip);
        assert_eq!(d(&a, EventKind::Resolved, false, recent), Decision::Send(NotifyEvent::Resolved));
        let info = alert(Severity::Info);
        assert_eq!(d(&info, EventKind::Fired, false, never), Decision::Suppress(SuppressReason::BelowSeverity));
        let mut acked = alert(Severity::Critical);
        acked.acknowledged_at = Some(now);
        assert_eq!(d(&acked, EventKind::Repeated, false, old), Decision::Suppress(SuppressReason::Acknowledged));
        let no_resolve = Route { send_resolved: false, ..ROUTE };
        assert_eq!(decide(&no_resolve, &a, EventKind::Resolved, false, recent, repeat, now), Decision::Skip);
        let mut excluded = alert(Severity::Critical);
        excluded.exclude_channel = Some("c".into());
        assert_eq!(d(&excluded, EventKind::Fired, false, never), Decision::Skip);
    }
}
