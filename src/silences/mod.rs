//! Silences: while one is in force, the messages it covers are not sent (the event is
//! still accepted and stored). Two kinds, checked alike:
//! - `[[silences]]` in the config, compiled with the rest of the pipeline;
//! - silences added at run time (`roam-notify silence add`, `POST /api/silences`),
//!   stored in the database and re-read every [`REFRESH`] by every replica ([`Stored`]).
//!
//! A silence's `match` means what a route's `match` means: the field's text is exactly
//! the value, or matches it when written `/regex/` (see `routing::when::match_table`).

mod matcher;
mod request;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::routing::when;
use crate::storage::{Store, StoreError};
pub use matcher::{CompiledSilence, Matcher, parse_instant};
pub use request::{SilenceRequest, Validated, create, validate};

/// How often a daemon re-reads the stored silences (another replica, or the command
/// line, may have added one).
pub const REFRESH: Duration = Duration::from_secs(2);

/// The stored silences in force, shared by every pipeline a reload builds.
#[derive(Debug, Clone, Default)]
pub struct Stored(Arc<ArcSwap<Vec<CompiledSilence>>>);

impl Stored {
    /// Reads and compiles the stored silences now.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        self.0.store(Arc::new(read(store).await?));
        Ok(())
    }

    /// Re-reads them now; on a storage error keeps the ones loaded (and says so).
    pub async fn refresh(&self, store: &Store) {
        if let Err(e) = self.reload(store).await {
            tracing::warn!(error = %e, "cannot re-read silences; keeping the ones loaded");
        }
    }

    /// Re-reads them every [`REFRESH`] until shut down.
    pub async fn keep_fresh(self, store: Store, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => self.refresh(&store).await,
                _ = shutdown.cancelled() => break,
            }
        }
    }
}

/// Stored silences, compiled; a row that no longer compiles is logged and skipped.
async fn read(store: &Store) -> Result<Vec<CompiledSilence>, StoreError> {
    let mut out = Vec::new();
    for s in store.list_silences(false).await? {
        let compiled = serde_json::from_str::<Matcher>(&s.matcher)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                CompiledSilence::compile(
                    format!("silence #{}", s.id),
                    s.comment.clone(),
                    s.starts_at,
                    s.ends_at,
                    &m,
                )
                .map_err(|(k, p)| format!("{k}: {p}"))
            });
        match compiled {
            Ok(c) => out.push(c),
            Err(e) => {
                tracing::error!(silence = s.id, error = %e, "stored silence cannot be used; ignoring it")
            }
        }
    }
    Ok(out)
}

/// Every silence a pipeline checks: the config's, then the stored ones.
#[derive(Debug, Default)]
pub struct Silences {
    configured: Vec<CompiledSilence>,
    stored: Stored,
}

/// The silence that covers a message: its label (`config silences[0]`, `silence #3`)
/// and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    pub silence: String,
    pub comment: String,
}

impl Silences {
    /// Compiles `[[silences]]`; every problem names its key.
    pub fn compile(cfg: &Config, stored: Stored) -> Result<Silences, ConfigError> {
        let mut configured = Vec::new();
        for (i, s) in cfg.silences.iter().enumerate() {
            let key = |k: &str| format!("silences[{i}].{k}");
            let starts = match &s.starts {
                None => 0,
                Some(t) => parse_instant(t).map_err(|e| cfg.error(&key("starts"), e))?,
            };
            let ends = parse_instant(&s.ends).map_err(|e| cfg.error(&key("ends"), e))?;
            let mut all: Vec<Value> = s
                .match_
                .iter()
                .map(|(path, v)| when::match_condition(path, &v.0))
                .collect();
            all.extend(s.when.clone());
            let matcher = Matcher {
                source: s.source.clone(),
                events: s.events.clone(),
                routes: s.routes.clone(),
                when: (!all.is_empty()).then(|| serde_json::json!({ "all": all })),
            };
            configured.push(
                CompiledSilence::compile(
                    format!("config silences[{i}]"),
                    s.comment.clone(),
                    starts,
                    ends,
                    &matcher,
                )
                .map_err(|(k, p)| cfg.error(&key(&k), p))?,
            );
        }
        Ok(Silences { configured, stored })
    }

    /// Adds the payload fields the configured silences' conditions read.
    pub fn configured_reads(&self, out: &mut crate::reads::Reads) {
        for s in &self.configured {
            s.field_paths().for_each(|p| out.add_field(p));
        }
    }

    /// Whether a stored silence has conditions on the payload: while one does, webhooks
    /// are built whole (its fields are not known when the pipeline is compiled).
    pub fn stored_read_payload(&self) -> bool {
        self.stored
            .0
            .load()
            .iter()
            .any(CompiledSilence::reads_payload)
    }

    /// The stored silences this pipeline reads (to refresh them).
    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// The first silence (config, then stored) that covers `route`'s message about this
    /// event at `now_ms`. `partial`: the payload was built in part (`Event::whole`).
    pub fn covering(
        &self,
        now_ms: i64,
        source: &str,
        event: &str,
        route: &str,
        payload: &Value,
        partial: bool,
    ) -> Option<Covered> {
        let stored = self.stored.0.load();
        // A payload built in part (`partial`) was built while no stored silence read the
        // payload: one that does now was stored since, after the webhook was read, and
        // does not apply to it (its fields may not have been built).
        self.configured
            .iter()
            .chain(stored.iter().filter(|s| !partial || !s.reads_payload()))
            .find(|s| s.silences(now_ms, source, event, route, payload))
            .map(|s| Covered {
                silence: s.label.clone(),
                comment: s.comment.clone(),
            })
    }
}
