//! Outbound pacing: a token bucket shared by every call to Roam, plus a global pause.
//!
//! The bucket allows `burst` requests at once and `rate` per second after that (Roam's
//! documented pace is 1/s with a burst of 10). A 429 pauses *all* sending until its
//! `Retry-After` has passed, not just the request that got it.
//!
//! With a shared (PostgreSQL) store the bucket and the pause live in the database, so
//! the limit holds for all replicas together: each request takes a token there. If the
//! database cannot be reached, this replica falls back to its own bucket.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::storage::Store;

#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
    /// The store whose bucket every replica shares, when there are replicas.
    shared: Option<Store>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
    /// Total time paused so far (overlapping pauses counted once), and 429 pauses.
    paused_total: Duration,
    pauses: u64,
}

impl Pacer {
    pub fn new(rate_per_second: f64, burst: u32) -> Pacer {
        let burst = f64::from(burst.max(1));
        Pacer {
            rate: rate_per_second,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
                paused_until: None,
                paused_total: Duration::ZERO,
                pauses: 0,
            }),
            shared: None,
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
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate).min(self.burst);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(())
        } else {
            // A tiny configured rate must not overflow the wait.
            Err(Duration::try_from_secs_f64((1.0 - s.tokens) / self.rate).unwrap_or(Duration::MAX))
        }
    }

    /// Waits until a request may be sent.
    pub async fn acquire(&self) {
        loop {
            let wait = match &self.shared {
                None => match self.try_acquire(Instant::now()) {
                    Ok(()) => return,
                    Err(wait) => wait,
                },
                // A pause this replica saw holds first; then the shared bucket decides.
                Some(store) => match self.paused_for() {
                    Some(wait) => wait,
                    None => match store.take_roam_token(self.rate, self.burst).await {
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
        s.pauses += 1;
        let already = s.paused_until.filter(|p| *p > now).unwrap_or(now);
        if until > already {
            s.paused_total += until - already;
        }
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
        // After a pause, start gently: no saved-up burst.
        s.tokens = s.tokens.min(1.0);
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

    /// (pauses so far, total time paused including the current pause's rest).
    pub fn pause_totals(&self) -> (u64, Duration) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (s.pauses, s.paused_total)
    }

    /// Time left in the current pause, if any.
    pub fn paused_for(&self) -> Option<Duration> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.paused_until
            .and_then(|u| u.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate() {
        let p = Pacer::new(1.0, 3);
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
        let p = Pacer::new(100.0, 10);
        p.pause_for(Duration::from_secs(30));
        p.pause_for(Duration::from_secs(5)); // shorter pause does not shorten it
        assert_eq!(
            p.pause_totals(),
            (2, Duration::from_secs(30)),
            "overlap counted once"
        );
        let start = Instant::now();
        p.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(30));
        assert!(p.paused_for().is_none());
    }
}
