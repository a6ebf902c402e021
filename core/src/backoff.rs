//! Exponential backoff with full jitter for durable retries. The delay is
//! written to the ledger as `next_attempt_at`, never slept on in memory.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Delay before the second attempt, in milliseconds.
    #[serde(default = "default_base_ms")]
    pub base_ms: u64,
    /// Upper bound of any one delay, in milliseconds.
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
}

fn default_base_ms() -> u64 {
    2_000
}

fn default_max_ms() -> u64 {
    600_000
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base_ms: default_base_ms(), max_ms: default_max_ms() }
    }
}

impl Backoff {
    /// Delay after the `attempt`-th try failed (1-based): base·2^(attempt-1),
    /// capped, then jittered into [½·d, d] so retries of many operations spread
    /// out but each later delay is still at least the previous one's lower bound.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let ceiling = self.base_ms.saturating_mul(1u64 << exp).min(self.max_ms).max(1);
        let jittered = rand::rng().random_range(ceiling / 2..=ceiling);
        Duration::from_millis(jittered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff { base_ms: 100, max_ms: 1_000 };
        for _ in 0..100 {
            let d1 = b.delay(1).as_millis();
            let d3 = b.delay(3).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            assert!((200..=400).contains(&d3), "{d3}");
            assert!(b.delay(20).as_millis() <= 1_000);
        }
    }
}
