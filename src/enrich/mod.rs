//! Enrichment: what a sender's webhook only names by id, read from the sender's API and
//! added to the event before it is routed and rendered. Today: HubSpot (`hubspot.rs`).
//!
//! It happens in the request, before the commit, bounded by the source's
//! `enrich_timeout`: routes can then match on what was read (`deal.amount >= 10000`) and
//! the message says it. The 202 never waits longer than that bound; when the API fails,
//! is slow, or rate-limits, the event goes on with its ids and `enrichment_error` saying
//! why, and the failure is logged and counted. Answers are cached durably
//! (`enrichment_cache`), so a burst of events about one deal asks once.

mod hubspot;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::inbound::Event;
use crate::metrics::Metrics;
use crate::storage::Store;
pub use hubspot::HubSpot;

/// The enrichers of the configured sources, by source name.
#[derive(Debug, Default)]
pub struct Enrichers(HashMap<String, Arc<HubSpot>>);

impl Enrichers {
    /// From `[[sources]]`: a `hubspot` source with an `api_token` gets an enricher. The
    /// enrichment keys on any other kind are refused, naming the key.
    pub fn build(cfg: &Config) -> Result<Enrichers, ConfigError> {
        let mut out = HashMap::new();
        for (i, s) in cfg.sources.iter().enumerate() {
            let key = |k: &str| format!("sources[{i}].{k}");
            let set = [
                ("api_token", s.api_token.is_some()),
                ("api_url", s.api_url.is_some()),
                ("enrich_timeout", s.enrich_timeout.is_some()),
                ("enrich_ttl", s.enrich_ttl.is_some()),
            ];
            if s.kind != "hubspot" {
                if let Some((k, _)) = set.iter().find(|(_, on)| *on) {
                    return Err(cfg.error(&key(k), "only hubspot sources read a CRM API"));
                }
                continue;
            }
            let Some(token) = &s.api_token else {
                if let Some((k, _)) = set.iter().find(|(_, on)| *on) {
                    return Err(cfg.error(&key(k), "needs api_token (a HubSpot private app token)"));
                }
                continue;
            };
            let hubspot =
                HubSpot::new(s, token.clone()).map_err(|e| cfg.error(&key("api_url"), e))?;
            out.insert(s.name.clone(), Arc::new(hubspot));
        }
        Ok(Enrichers(out))
    }

    /// Adds what the source's API says to each event, within its bound. Never fails: a
    /// failure is written into the event (`enrichment_error`), logged and counted.
    pub async fn enrich(
        &self,
        source: &str,
        events: &mut [Event],
        store: &Store,
        metrics: &Metrics,
    ) {
        if let Some(h) = self.0.get(source) {
            h.enrich(source, events, store, metrics).await;
        }
    }
}
