//! The one way in: a source's verified events are routed, rendered and committed here,
//! whoever brought them (the webhook endpoint in `http::hooks`, the transcript sweep).
//!
//! - [`Pipeline`]: what a configuration compiles to (sources, templates, routes,
//!   silences), swapped whole by a reload;
//! - [`Pipeline::plan`] (`plan.rs`): one event into the rows to commit, in memory;
//! - [`Ingest::accept`] (`accept.rs`): plans a request's events, commits them durably
//!   (group commit), and does the bookkeeping every way in shares: logs, counters,
//!   silenced and muted routes, template failures;
//! - [`simulate`]: the same without committing, for `routes test`, `[[tests]]` and the
//!   console's explain form.

mod accept;
mod plan;
mod reads;
pub mod recent;
pub mod simulate;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arc_swap::access::Map;
use ipnet::IpNet;

use crate::config::{Config, ConfigError};
use crate::directory::Directory;
use crate::enrich::Enrichers;
use crate::inbound::{self, Source};
use crate::reads::Reads;
use crate::render::{CurrentTemplates, Templates};
use crate::routing::Router;
use crate::silences::{self, Silences};
pub use accept::{EventOutcome, Ingest, IngestError, Outcome};
pub use plan::{Planned, Quiet, RenderFailure, Rendering};

pub struct Pipeline {
    pub sources: HashMap<String, Source>,
    pub templates: Templates,
    pub router: Router,
    /// `[[silences]]` plus the stored silences every pipeline of this daemon shares.
    pub silences: Silences,
    /// Proxies whose `X-Forwarded-For` names the client (`server.trusted_proxies`).
    pub trusted_proxies: Vec<IpNet>,
    /// `[transcripts] internal_domains`, for transcript events built offline.
    pub transcript_domains: Vec<String>,
    /// What `#Name`s and emails stand for (empty offline), shared like the silences.
    pub directory: Directory,
    /// Sources whose events are completed from the sender's API (HubSpot).
    pub enrichers: Enrichers,
    /// What each source reads of its payloads (`reads.rs`), by source name.
    reads: HashMap<String, Reads>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("sources", &self.sources.len())
            .field("routes", &self.router.routes().len())
            .finish()
    }
}

impl Pipeline {
    /// Compiles sources, templates, routes and silences; every problem names its file and
    /// key. `stored` are the run-time silences (empty offline).
    pub fn compile(cfg: &Config, stored: silences::Stored) -> Result<Pipeline, ConfigError> {
        let sources = inbound::build_sources(cfg)?;
        let templates = Templates::load(cfg)?;
        let router = Router::compile(cfg, &sources, &templates)?;
        let silences = Silences::compile(cfg, stored)?;
        let trusted_proxies = inbound::parse_cidrs(&cfg.server.trusted_proxies)
            .map_err(|(n, e)| cfg.error(&format!("server.trusted_proxies[{n}]"), e))?;
        let enrichers = Enrichers::build(cfg)?;
        let reads = sources
            .iter()
            .map(|s| {
                let r = reads::source_reads(s, &router, &templates, &silences, &enrichers);
                (s.name.clone(), r)
            })
            .collect();
        Ok(Pipeline {
            sources: sources.into_iter().map(|s| (s.name.clone(), s)).collect(),
            templates,
            router,
            silences,
            trusted_proxies,
            transcript_domains: inbound::roam::transcript::internal_domains(
                &cfg.transcripts.internal_domains,
            ),
            directory: Directory::default(),
            enrichers,
            reads,
        })
    }

    /// What `source` reads of its payloads, when that is less than all of them and no
    /// stored silence has conditions on the payload; None: build each payload whole.
    pub fn reads(&self, source: &str) -> Option<&Reads> {
        let r = self.reads.get(source).filter(|r| !r.is_all())?;
        (!self.silences.stored_read_payload()).then_some(r)
    }

    /// Resolves names with this directory (the daemon's, shared by every reload).
    pub fn with_directory(mut self, directory: Directory) -> Pipeline {
        self.directory = directory;
        self
    }

    /// The templates of whichever pipeline is in force, for the group flusher.
    pub fn current_templates(pipeline: &Arc<ArcSwap<Pipeline>>) -> CurrentTemplates {
        Box::new(Map::new(pipeline.clone(), |p: &Pipeline| &p.templates))
    }
}
