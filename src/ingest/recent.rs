//! The last webhooks this daemon accepted, raw (headers and body as received), kept in
//! memory for the console: its silence form previews which of them a new silence would
//! have covered. Bounded by count and bytes; a restart starts empty; nothing from here
//! is logged or shown but what the pipeline makes of it.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::HeaderMap;

/// How many requests are kept, and how many body bytes at most.
const KEEP: usize = 200;
const KEEP_BYTES: usize = 4 << 20;

/// One accepted request.
#[derive(Clone)]
pub struct Received {
    pub at_ms: i64,
    pub source: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl std::fmt::Debug for Received {
    // Headers carry signatures and tokens: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("at_ms", &self.at_ms)
            .field("source", &self.source)
            .field("bytes", &self.body.len())
            .finish()
    }
}

#[derive(Debug, Default)]
pub struct Recent {
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    items: VecDeque<Received>,
    bytes: usize,
}

impl Recent {
    /// Keeps a request, dropping the oldest past the bounds. A body larger than the
    /// whole budget is not kept.
    pub fn record(&self, r: Received) {
        if r.body.len() > KEEP_BYTES {
            return;
        }
        let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ring.bytes += r.body.len();
        ring.items.push_back(r);
        while ring.items.len() > KEEP || ring.bytes > KEEP_BYTES {
            match ring.items.pop_front() {
                Some(old) => ring.bytes -= old.body.len(),
                None => break,
            }
        }
    }

    /// Newest first.
    pub fn snapshot(&self) -> Vec<Received> {
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ring.items.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: usize, size: usize) -> Received {
        Received {
            at_ms: n as i64,
            source: format!("s{n}"),
            headers: HeaderMap::new(),
            body: Bytes::from(vec![b'x'; size]),
        }
    }

    #[test]
    fn keeps_the_newest_within_count_and_bytes() {
        let r = Recent::default();
        for n in 0..KEEP + 5 {
            r.record(req(n, 10));
        }
        let s = r.snapshot();
        assert_eq!(s.len(), KEEP);
        assert_eq!(s[0].at_ms, (KEEP + 4) as i64, "newest first");
        // Two large bodies: only the newest fits beside the budget.
        r.record(req(1000, KEEP_BYTES / 2 + 1));
        r.record(req(1001, KEEP_BYTES / 2 + 1));
        let s = r.snapshot();
        assert_eq!(s[0].at_ms, 1001);
        assert!(s.iter().all(|x| x.at_ms != 1000));
        assert!(s.iter().map(|x| x.body.len()).sum::<usize>() <= KEEP_BYTES);
        r.record(req(2000, KEEP_BYTES + 1));
        assert_eq!(r.snapshot()[0].at_ms, 1001, "too large to keep");
    }
}
