//! Outbound pacing: a token bucket shared by every call to Roam (posting, transcripts,
//! name lookups), plus a global pause.
//!
//! The bucket allows `burst` requests at once and `rate` per second after that (Roam's
//! documented pace is 1/s with a burst of 10). A 429 pauses *all* sending until its
//! `Retry-After` has passed, not just the request that got it.
//!
//! With a shared (PostgreSQL) store the bucket and the pause live in the database, so
//! the limit holds for all replicas together: each request takes a token there. If the
//! database cannot be reached, this replica falls back to its own bucket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::ratelimit::TokenBucket;
use crate::roam::RoamError;
use crate::storage::Store;

/// 429s in a row on one call before [`Pacer::call`] gives up on it.
const MAX_RATE_LIMITED: u32 = 5;

#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
    /// The store whose bucket every replica shares, when there are replicas.
    shared: Option<Store>,
    /// Pauses and paused time are counted here (overlapping pauses once).
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct State {
    bucket: TokenBucket,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub fn new(rate_per_second: f64, burst: u32, metrics: Arc<Metrics>) -> Pacer {
        Pacer {
            state: Mutex::new(State {
                bucket: TokenBucket::new(rate_per_second, burst),
                paused_until: None,
            }),
            shared: None,
            metrics,
        }
    }

    /// Takes tokens from the store's shared bucket when the store is shared.
    pub fn sharing(mut self, store: &Store) -> Pacer {
        self.shared = store.is_shared().then(|| store.clone());
        self
    }

    /// Takes a token if one is available now; otherwise says how long to wait.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = s.paused_until {
            if now < until {
                return Err(until - now);
            }
            s.paused_until = None;
        }
        s.bucket.take(now)
    }

    /// Waits until a request may be sent.
    pub async fn acquire(&self) {
        let (rate, burst) = {
            let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (s.bucket.rate(), s.bucket.burst())
        };
        loop {
            let wait = match &self.shared {
                None => match self.try_acquire(Instant::now()) {
                    Ok(()) => return,
                    Err(wait) => wait,
                },
                // A pause this replica saw holds first; then the shared bucket decides.
                Some(store) => match self.paused_for() {
                    Some(wait) => wait,
                    None => match store.take_roam_token(rate, burst).await {
                        Ok(None) => return,
                        Ok(Some(wait)) => wait,
                        Err(e) => {
                            tracing::warn!(error = %e, "shared Roam rate limit unavailable; pacing this replica alone");
                            match self.try_acquire(Instant::now()) {
                                Ok(()) => return,
                                Err(wait) => wait,
                            }
                        }
                    },
                },
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Stops all sending for `d` (a pause already longer is kept).
    pub fn pause_for(&self, d: Duration) {
        let now = Instant::now();
        let until = now + d;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.metrics.roam_pauses.inc();
        let already = s.paused_until.filter(|p| *p > now).unwrap_or(now);
        if until > already {
            self.metrics
                .roam_paused_seconds
                .inc_by((until - already).as_secs_f64());
        }
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
        // After a pause, start gently: no saved-up burst.
        s.bucket.drain();
        drop(s);
        // Every replica pauses too.
        if let (Some(store), Ok(rt)) = (&self.shared, tokio::runtime::Handle::try_current()) {
            let store = store.clone();
            rt.spawn(async move {
                if let Err(e) = store.pause_roam(d).await {
                    tracing::warn!(error = %e, "could not share the Roam pause with the other replicas");
                }
            });
        }
    }

    /// Time left in the current pause, if any.
    pub fn paused_for(&self) -> Option<Duration> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.paused_until
            .and_then(|u| u.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// One Roam API call that is not a message (a lookup, a list): paced, and on a 429
    /// all calls pause for its `Retry-After` and the call is tried again, up to
    /// `MAX_RATE_LIMITED` times. `what` names the work in the log.
    pub async fn call<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, RoamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RoamError>>,
    {
        let mut limited = 0;
        loop {
            self.acquire().await;
            match call().await {
                Err(e @ RoamError::RateLimited { .. }) if limited < MAX_RATE_LIMITED => {
                    limited += 1;
                    let wait = e.rate_limit_wait().unwrap_or_default();
                    tracing::warn!(
                        wait_s = wait.as_secs_f64(),
                        "429 from Roam during {what}; all calls paused"
                    );
                    self.pause_for(wait);
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate() {
        let p = Pacer::new(1.0, 3, Arc::default());
        let start = Instant::now();
        for _ in 0..3 {
            p.acquire().await;
        }
        assert_eq!(Instant::now() - start, Duration::ZERO, "burst is immediate");
        p.acquire().await;
        p.acquire().await;
        let took = Instant::now() - start;
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_millis(2100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pause_blocks_everything_until_it_ends() {
        let metrics = Arc::new(Metrics::default());
        let p = Pacer::new(100.0, 10, metrics.clone());
        p.pause_for(Duration::from_secs(30));
        p.pause_for(Duration::from_secs(5)); // shorter pause does not shorten it
        assert_eq!(metrics.roam_pauses.get(), 2);
        assert_eq!(
            metrics.roam_paused_seconds.get(),
            30.0,
            "overlap counted once"
        );
        let start = Instant::now();
        p.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(30));
        assert!(p.paused_for().is_none());
    }
}
