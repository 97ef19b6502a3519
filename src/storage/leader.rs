//! Leadership among replicas: background work that must run in one process at a time
//! (the group flusher, the transcript queue, pruning) runs only while this replica holds
//! the `background` lease. On SQLite the one process always holds it.
//!
//! The lease lasts `TTL` in the database's clock and is renewed when a caller asks and
//! a third of it has passed, so a replica acts as leader at most `TTL / 3` past its last
//! renewal, well inside the lease. A replica that dies stops renewing; another takes over
//! within `TTL`. A replica that stops cleanly gives the lease up at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::Store;

const NAME: &str = "background";
pub const TTL: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Leader {
    store: Store,
    /// When the lease was last taken or renewed, if this replica holds it.
    renewed: Arc<Mutex<Option<Instant>>>,
    /// The outcome of the last `holds`, for `/readyz` and `/metrics`.
    leading: Arc<AtomicBool>,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leader")
    }
}

impl Leader {
    pub fn new(store: Store) -> Leader {
        Leader {
            store,
            renewed: Arc::new(Mutex::new(None)),
            leading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether this replica led at its last check (always, on SQLite).
    pub fn leading(&self) -> bool {
        !self.store.is_shared() || self.leading.load(Ordering::Relaxed)
    }

    /// Whether this replica leads now (taking or renewing the lease if due).
    pub async fn holds(&self) -> bool {
        let holds = self.check().await;
        self.leading.store(holds, Ordering::Relaxed);
        holds
    }

    async fn check(&self) -> bool {
        if !self.store.is_shared() {
            return true;
        }
        let mut renewed = self.renewed.lock().await;
        if let Some(at) = *renewed
            && at.elapsed() < TTL / 3
        {
            return true;
        }
        let was = renewed.is_some();
        let asked = Instant::now();
        match self
            .store
            .try_lease(NAME, self.store.replica_id(), TTL)
            .await
        {
            Ok(true) => {
                if !was {
                    tracing::info!(
                        replica = self.store.replica_id(),
                        "this replica now runs the group flusher, transcript queue and pruning"
                    );
                }
                *renewed = Some(asked);
                true
            }
            Ok(false) => {
                if was {
                    tracing::warn!(
                        replica = self.store.replica_id(),
                        "lost the background lease to another replica"
                    );
                }
                *renewed = None;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the background lease; standing down until the database answers");
                *renewed = None;
                false
            }
        }
    }

    /// Gives the lease up (at shutdown), so another replica takes over at once.
    pub async fn resign(&self) {
        let mut renewed = self.renewed.lock().await;
        self.leading.store(false, Ordering::Relaxed);
        if renewed.take().is_some() && self.store.is_shared() {
            let _ = self
                .store
                .try_lease(NAME, self.store.replica_id(), Duration::ZERO)
                .await;
        }
    }
}
