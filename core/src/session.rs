//! Dashboard sessions: a browser that logged in with an API token gets a
//! random session secret (its cookie) and a CSRF secret bound to it. The
//! database keeps only the secret's SHA-256. A session lives while its token
//! does, ends after `idle` without a request, and after `absolute` in any case.

use std::time::Duration;

use rand::RngCore;

use crate::{Timestamp, auth};

/// How long sessions may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Without a request for this long, a session ends.
    pub idle: Duration,
    /// A session ends this long after login, however busy.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self { idle: Duration::from_secs(30 * 60), absolute: Duration::from_secs(12 * 3600) }
    }
}

/// `last_seen_at` is written at most this often per session, not on every page.
pub const TOUCH_GRANULARITY: Duration = Duration::from_secs(30);

/// Whether a session may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    /// No request for longer than the idle timeout.
    Idle,
    /// Past its absolute expiry.
    Expired,
}

impl SessionPolicy {
    /// A session's liveness at `now`, from when it was last seen and when it expires.
    pub fn liveness(&self, last_seen_at: Timestamp, expires_at: Timestamp, now: Timestamp) -> Liveness {
        if expires_at <= now {
            Liveness::Expired
        } else if last_seen_at.plus(self.idle) <= now {
            Liveness::Idle
        } else {
            Liveness::Live
        }
    }
}

/// A fresh session's secrets: `cookie` goes to the browser (and nowhere else),
/// `id` (its hash) to the database, `csrf` into every form the session renders.
#[derive(Clone)]
pub struct NewSession {
    pub cookie: String,
    pub id: String,
    pub csrf: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").field("id", &self.id).finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl NewSession {
    pub fn generate() -> Self {
        let cookie = random_hex();
        Self { id: session_id(&cookie), cookie, csrf: random_hex() }
    }
}

/// The stored id of a session whose cookie is `cookie`.
pub fn session_id(cookie: &str) -> String {
    auth::hash(cookie)
}

/// Whether a presented CSRF token is the session's, in constant time.
pub fn csrf_matches(presented: &str, expected: &str) -> bool {
    auth::digests_match(presented, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_expiry() {
        let policy = SessionPolicy { idle: Duration::from_secs(60), absolute: Duration::from_secs(600) };
        let t0 = Timestamp::now();
        let expires = t0.plus(policy.absolute);
        assert_eq!(policy.liveness(t0, expires, t0.plus(Duration::from_secs(59))), Liveness::Live);
        assert_eq!(policy.liveness(t0, expires, t0.plus(Duration::from_secs(60))), Liveness::Idle);
        let recent = t0.plus(Duration::from_secs(590));
        assert_eq!(policy.liveness(recent, expires, t0.plus(Duration::from_secs(599))), Liveness::Live);
        assert_eq!(policy.liveness(recent, expires, t0.plus(Duration::from_secs(600))), Liveness::Expired);
    }

    #[test]
    fn secrets_are_random_and_only_the_hash_is_the_id() {
        let (a, b) = (NewSession::generate(), NewSession::generate());
        assert_ne!(a.cookie, b.cookie);
        assert_ne!(a.csrf, b.csrf);
        assert_eq!(a.id, session_id(&a.cookie));
        assert_ne!(a.id, a.cookie);
        assert!(csrf_matches(&a.csrf, &a.csrf.clone()) && !csrf_matches(&a.csrf, &b.csrf));
        assert!(!format!("{a:?}").contains(&a.cookie));
    }
}
