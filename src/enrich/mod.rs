//! Enrichment: what a sender's webhook only names by id, read from the sender's API and
//! added to the event before it is routed and rendered: HubSpot records with their labels
//! and owners (`hubspot.rs`), PagerDuty assignees and Pipedrive deal owners by email
//! (`people.rs`), each through `api.rs`.
//!
//! It happens in the request, before the commit, bounded by the source's
//! `enrich_timeout`: routes can then match on what was read (`deal.amount >= 10000`) and
//! send to who was found (`{{owner.email}}`). The 202 never waits longer than that
//! bound; when the API fails, is slow, or rate-limits, the event goes on with its ids and
//! `enrichment_error` saying why, and the failure is logged and counted. Answers are
//! cached durably (`enrichment_cache`), so a burst of events about one record asks once.

mod api;
mod hubspot;
mod people;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{Config, ConfigError};
use crate::inbound::Event;
use crate::metrics::Metrics;
use crate::storage::Store;
use api::{Api, Call, Failure};
pub use hubspot::HubSpot;
pub use people::People;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// What `enrich_timeout` may be: the webhook's sender waits for its answer meanwhile.
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// One source's enricher.
#[derive(Debug)]
pub enum Enricher {
    HubSpot(HubSpot),
    People(People),
}

impl Enricher {
    fn api(&self) -> &Api {
        match self {
            Enricher::HubSpot(h) => h.api(),
            Enricher::People(p) => p.api(),
        }
    }

    async fn fields(&self, payload: &Value, c: Call<'_>) -> Option<Result<Value, Failure>> {
        match self {
            Enricher::HubSpot(h) => h.fields(payload, c).await,
            Enricher::People(p) => p.fields(payload, c).await,
        }
    }
}

/// The enrichers of the configured sources, by source name.
#[derive(Debug, Default)]
pub struct Enrichers(HashMap<String, Enricher>);

impl Enrichers {
    /// From `[[sources]]`: a `hubspot`, `pagerduty` or `pipedrive` source with an
    /// `api_token` gets an enricher. The enrichment keys on any other kind, or without a
    /// token, are refused, naming the key.
    /// Whether events of `source` are completed from the sender's API.
    pub fn covers(&self, source: &str) -> bool {
        self.0.contains_key(source)
    }

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
            let first_set = set.iter().find(|(_, on)| *on).map(|(k, _)| *k);
            if !matches!(s.kind.as_str(), "hubspot" | "pagerduty" | "pipedrive") {
                if let Some(k) = first_set {
                    return Err(cfg.error(
                        &key(k),
                        "only hubspot, pagerduty and pipedrive sources read their sender's API",
                    ));
                }
                continue;
            }
            let Some(token) = s.api_token.clone() else {
                if let Some(k) = first_set {
                    return Err(cfg.error(&key(k), "needs api_token (the sender's API token)"));
                }
                continue;
            };
            let timeout = s.enrich_timeout.unwrap_or(DEFAULT_TIMEOUT);
            if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
                return Err(cfg.error(
                    &key("enrich_timeout"),
                    "must be between 100ms and 10s: the sender waits for the answer meanwhile (HubSpot gives up after 5s)",
                ));
            }
            let e = match s.kind.as_str() {
                "hubspot" => HubSpot::new(s, token, timeout, s.enrich_ttl.unwrap_or(DEFAULT_TTL))
                    .map(Enricher::HubSpot),
                "pagerduty" => People::pagerduty(s, token, timeout).map(Enricher::People),
                _ => People::pipedrive(s, token, timeout).map(Enricher::People),
            }
            .map_err(|e| cfg.error(&key("api_url"), e))?;
            out.insert(s.name.clone(), e);
        }
        Ok(Enrichers(out))
    }

    /// Adds what the source's API says to each event, all within the source's bound.
    /// Never fails: a failure is written into the event (`enrichment_error`), logged and
    /// counted.
    pub async fn enrich(
        &self,
        source: &str,
        events: &mut [Event],
        store: &Store,
        metrics: &Metrics,
    ) {
        let Some(e) = self.0.get(source) else {
            return;
        };
        let api = e.api();
        let call = Call {
            deadline: Instant::now() + api.timeout,
            store,
            metrics,
            source,
        };
        for ev in events.iter_mut() {
            let result =
                tokio::time::timeout_at(call.deadline.into(), e.fields(&ev.payload, call)).await;
            let result = match result {
                Ok(None) => continue,
                Ok(Some(r)) => r,
                Err(_) => Err(api.too_slow()),
            };
            let Some(obj) = ev.payload.as_object_mut() else {
                continue;
            };
            match result {
                Ok(Value::Object(fields)) => obj.extend(fields),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(source, api = api.name, delivery_id = %ev.delivery_id, error = %err,
                        "enrichment failed; the message shows the ids");
                    metrics.enrichments.inc(&[source, "failed"]);
                    obj.insert("enrichment_error".into(), Value::String(err.to_string()));
                }
            }
        }
    }
}
