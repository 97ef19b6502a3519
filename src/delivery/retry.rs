//! The retry schedule, as data: exponential backoff with jitter, capped, with a deadline.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// A message still failing this long after it was accepted is dead-lettered.
    pub give_up_after: Duration,
}

/// ±20 %: spreads retries of many messages that failed together.
const JITTER: f64 = 0.2;

impl RetryPolicy {
    /// Delay before attempt `failed_attempts + 1`, with random jitter.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        self.delay_with_jitter(failed_attempts, fastrand::f64() * 2.0 - 1.0)
    }

    /// `jitter` in [-1, 1] scales the ±20 % band (deterministic, for tests).
    pub fn delay_with_jitter(&self, failed_attempts: u32, jitter: f64) -> Duration {
        let base = self.base_delay(failed_attempts).as_secs_f64();
        let factor = 1.0 + JITTER * jitter.clamp(-1.0, 1.0);
        Duration::try_from_secs_f64(base * factor).unwrap_or(Duration::MAX)
    }

    /// `initial * 2^(n-1)`, capped at `max`.
    pub fn base_delay(&self, failed_attempts: u32) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(32);
        let d = self.initial.saturating_mul(1u32 << exp.min(31));
        d.min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn doubles_then_caps() {
        let p = policy();
        let secs: Vec<u64> = (1..=11).map(|n| p.base_delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    proptest! {
        #[test]
        fn delay_stays_in_the_jitter_band(n in 0u32..100, j in -1.0f64..1.0) {
            let p = policy();
            let base = p.base_delay(n).as_secs_f64();
            let d = p.delay_with_jitter(n, j).as_secs_f64();
            prop_assert!(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9);
            prop_assert!(d <= 300.0 * 1.2 + 1e-9);
        }

        #[test]
        fn base_delay_never_decreases(n in 0u32..200) {
            let p = policy();
            prop_assert!(p.base_delay(n + 1) >= p.base_delay(n));
        }
    }
}
