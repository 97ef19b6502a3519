//! Accepting a source's events: plan each, commit them all durably, and account for
//! what happened the same way whichever entry point brought them.

use std::sync::Arc;

use super::{Pipeline, Quiet};
use crate::inbound::{Event, Source};
use crate::metrics::Metrics;
use crate::storage::Committed;
use crate::storage::committer::CommitHandle;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Nothing was committed; the sender should retry.
    #[error("{0}")]
    Storage(String),
}

/// What accepting one event did.
#[derive(Debug, Clone)]
pub struct EventOutcome {
    pub delivery_id: String,
    pub name: String,
    /// False: the delivery id was seen before and nothing new was queued.
    pub new: bool,
    /// The routes it matched (for a duplicate: the first time).
    pub routes: Vec<String>,
    /// Messages queued for Roam now.
    pub messages: usize,
    /// Items waiting in groups (grouping, dedup, max_messages or a mute summary).
    pub held: usize,
    /// Why matched routes send nothing now (only for a new event).
    pub quiet: Vec<String>,
}

/// What accepting a request's events did, in their order.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub events: Vec<EventOutcome>,
}

impl Outcome {
    /// Whether anything new was stored: a request with no events counts as new (it was
    /// accepted; there was just nothing to route).
    pub fn any_new(&self) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e.new)
    }

    pub fn messages(&self) -> usize {
        self.events.iter().map(|e| e.messages).sum()
    }

    pub fn held(&self) -> usize {
        self.events.iter().map(|e| e.held).sum()
    }

    /// Every route matched, each once, in first-seen order.
    pub fn routes(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for r in self.events.iter().flat_map(|e| &e.routes) {
            if !all.contains(r) {
                all.push(r.clone());
            }
        }
        all
    }
}

/// The ingest step: shared by the webhook endpoint and the transcript sweep.
#[derive(Debug, Clone)]
pub struct Ingest {
    committer: CommitHandle,
    metrics: Arc<Metrics>,
}

impl Ingest {
    pub fn new(committer: CommitHandle, metrics: Arc<Metrics>) -> Ingest {
        Ingest { committer, metrics }
    }

    /// The daemon's metrics this step counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Plans `events` with `pipeline`, commits them in one batch, and returns per event
    /// whether it was new. Returns only after the commit is durable.
    pub async fn accept(
        &self,
        pipeline: &Pipeline,
        source: &Source,
        events: Vec<Event>,
    ) -> Result<Outcome, IngestError> {
        let mut planned = Vec::with_capacity(events.len());
        let mut quiet = Vec::with_capacity(events.len());
        for ev in events {
            let p = pipeline.plan(source, ev, super::Rendering::WhenSent);
            for q in &p.quiet {
                let reason = match q {
                    Quiet::Silenced { .. } => "silenced",
                    Quiet::Muted { .. } => "muted",
                };
                self.metrics.quiet.inc(&[reason]);
                tracing::info!(source = %source.name, delivery_id = %p.event.delivery_id, event = %p.event.name, "{q}");
            }
            for f in &p.render_errors {
                self.metrics.template_errors.inc(&[&f.route]);
                tracing::error!(source = %source.name, delivery_id = %p.event.delivery_id, event = %p.event.name,
                    route = %f.route, error = %f.error, "template failed; the message is sent in its plain fallback form (or, for a failing optional card part, without that part)");
            }
            quiet.push(p.quiet.iter().map(ToString::to_string).collect());
            planned.push(p.event);
        }
        // What the accounting needs once the events have moved into the commit.
        let ledger: Vec<Ledger> = planned.iter().map(Ledger::of).collect();
        let results = self
            .committer
            .commit(planned)
            .await
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        let events = ledger
            .into_iter()
            .zip(results)
            .zip(quiet)
            .map(|((l, result), quiet)| self.account(source, l, result, quiet))
            .collect();
        Ok(Outcome { events })
    }

    fn account(
        &self,
        source: &Source,
        l: Ledger,
        result: Committed,
        quiet: Vec<String>,
    ) -> EventOutcome {
        match result {
            Committed::Inserted { messages, held, .. } => {
                for r in &l.routes {
                    self.metrics.routed.inc(&[r]);
                }
                for r in &l.queued {
                    self.metrics.messages.inc(&[r, "queued"]);
                }
                for r in &l.held {
                    self.metrics.messages.inc(&[r, "held"]);
                }
                tracing::info!(source = %source.name, delivery_id = %l.delivery_id, event = %l.name,
                    routes = ?l.routes, messages, held, "accepted");
                EventOutcome {
                    delivery_id: l.delivery_id,
                    name: l.name,
                    new: true,
                    routes: l.routes,
                    messages,
                    held,
                    quiet,
                }
            }
            Committed::Duplicate { routes } => {
                tracing::info!(source = %source.name, delivery_id = %l.delivery_id, event = %l.name,
                    "duplicate delivery; nothing new queued");
                EventOutcome {
                    delivery_id: l.delivery_id,
                    name: l.name,
                    new: false,
                    routes,
                    messages: 0,
                    held: 0,
                    quiet: Vec::new(),
                }
            }
        }
    }
}

/// One planned event's names: its id, its routes, and the route of each queued message
/// and held item (for the counters).
struct Ledger {
    delivery_id: String,
    name: String,
    routes: Vec<String>,
    queued: Vec<String>,
    held: Vec<String>,
}

impl Ledger {
    fn of(e: &crate::storage::NewEvent) -> Ledger {
        Ledger {
            delivery_id: e.delivery_id.clone(),
            name: e.name.clone(),
            routes: e.routes.clone(),
            queued: e.messages.iter().map(|m| m.route.clone()).collect(),
            held: e.held.iter().map(|h| h.route.clone()).collect(),
        }
    }
}
