//! The daemon's directory at work: checked at start and on reload, kept fresh.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Directory, Lookup, refresh, verify, written};
use crate::config::{Config, ConfigError};
use crate::pacer::Pacer;
use crate::roam::RoamClient;
use crate::storage::Store;
use crate::storage::leader::Leader;

/// The directory with what it needs to ask Roam (no client: dry-run).
#[derive(Debug, Clone)]
pub struct Resolver {
    pub directory: Directory,
    client: Option<RoamClient>,
    pacer: Arc<Pacer>,
    store: Store,
}

impl Resolver {
    pub fn new(
        directory: Directory,
        client: Option<RoamClient>,
        pacer: Arc<Pacer>,
        store: Store,
    ) -> Resolver {
        Resolver {
            directory,
            client,
            pacer,
            store,
        }
    }

    fn lookup(&self) -> Option<Lookup<'_>> {
        self.client.as_ref().map(|client| Lookup {
            client,
            pacer: &self.pacer,
            store: Some(&self.store),
        })
    }

    /// At start and on reload: reads the cache, asks Roam about the config's names and
    /// emails (if Roam cannot be reached, the cache answers), and checks them all. In
    /// dry-run (no key) names cannot be checked: a warning says so.
    pub async fn prepare(&self, cfg: &Config) -> Result<(), ConfigError> {
        if let Err(e) = self.directory.load(&self.store).await {
            tracing::warn!(error = %e, "cannot read the directory cache");
        }
        let wanted = written(cfg);
        let Some(lookup) = self.lookup() else {
            if !wanted.is_empty() {
                tracing::warn!(
                    count = wanted.len(),
                    "dry-run: #Names and emails in the config are not checked without a Roam API key; the log shows them as written"
                );
            }
            return Ok(());
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let asked = refresh(&self.directory, lookup, &wanted, false).await;
        if let Err(e) = &asked {
            tracing::warn!(error = %e, "cannot ask Roam about the names in the config; using the cached directory");
        }
        verify(cfg, &self.directory.snapshot()).map_err(|mut e| {
            // Not "unknown" when Roam could not be asked: say so.
            if let Err(roam) = &asked {
                e.problem = format!(
                    "{} (Roam could not be asked: {roam}; the directory cache does not know it either)",
                    e.problem
                );
            }
            e
        })
    }

    /// Every `every`, on the replica that leads: lists chats again and looks up every
    /// known email, so renamed chats and new people are seen; other replicas re-read the
    /// cache. A failed refresh keeps what is known.
    pub async fn keep_fresh(self, every: Duration, leader: Leader, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            match (self.lookup(), leader.holds().await) {
                (Some(lookup), true) => {
                    if let Err(e) = refresh(&self.directory, lookup, &[], true).await {
                        tracing::warn!(error = %e, "directory refresh failed; keeping the names known");
                    }
                }
                _ => {
                    if let Err(e) = self.directory.load(&self.store).await {
                        tracing::warn!(error = %e, "cannot re-read the directory cache");
                    }
                }
            }
        }
    }
}
