//! A token bucket: `burst` at once, then `rate` per second. The Roam pacer
//! (`pacer::Pacer`) and each source's inbound `rate_limit` use it.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Full: the first `burst` requests go at once.
    pub fn new(rate_per_second: f64, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate_per_second,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Takes a token if one is available at `now`; otherwise says how long to wait.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // A tiny configured rate must not overflow the wait.
            Err(Duration::try_from_secs_f64((1.0 - self.tokens) / self.rate)
                .unwrap_or(Duration::MAX))
        }
    }

    /// Drops any saved-up burst: at most one request may go at once.
    pub fn drain(&mut self) {
        self.tokens = self.tokens.min(1.0);
    }
}
