//! Hot reload: SIGHUP or `POST /-/reload` re-reads the config file (and environment),
//! rules and templates, compiles all of it, and swaps the pipeline atomically.
//!
//! An invalid new config is refused with the reason, and the running one stays. Nothing
//! in flight is lost or re-sent: a request keeps the pipeline it started with, queued
//! messages are already rendered, and pending groups carry their own settings. Settings
//! read only at start-up (listeners, storage, Roam client, delivery) are reported as
//! needing a restart rather than silently ignored.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::config::{Config, ConfigError, Origin};
use crate::directory::Resolver;
use crate::ingest::Pipeline;
use crate::metrics::Metrics;
use crate::transcripts::schedule::Schedule;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this daemon was started from an in-memory config; there is no file to re-read")]
    NotReloadable,
    #[error("{0}")]
    Invalid(#[from] ConfigError),
}

/// What a successful reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub sources: usize,
    pub routes: usize,
    /// Changed keys that only take effect after a restart.
    pub restart_needed: Vec<&'static str>,
}

pub struct Reloader {
    origin: Origin,
    pipeline: Arc<ArcSwap<Pipeline>>,
    metrics: Arc<Metrics>,
    /// The config in effect; also serialises reloads.
    current: tokio::sync::Mutex<Config>,
    /// Checks the new config's #Names and emails with Roam (none offline).
    resolver: Option<Resolver>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("origin", &self.origin)
            .finish()
    }
}

impl Reloader {
    pub fn new(cfg: Config, pipeline: Arc<ArcSwap<Pipeline>>, metrics: Arc<Metrics>) -> Reloader {
        Reloader {
            origin: cfg.reload_origin(),
            pipeline,
            metrics,
            current: tokio::sync::Mutex::new(cfg),
            resolver: None,
        }
    }

    /// A copy of the configuration in effect (for the console's routing page).
    pub async fn config(&self) -> Config {
        self.current.lock().await.clone()
    }

    /// Checks names and emails with this resolver before a new config is swapped in.
    pub fn with_resolver(mut self, resolver: Resolver) -> Reloader {
        self.resolver = Some(resolver);
        self
    }

    /// Re-reads and compiles the configuration and swaps it in; counted by result.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let result = self.reload_inner().await;
        let label = if result.is_ok() { "ok" } else { "invalid" };
        self.metrics.reloads.inc(&[label]);
        result
    }

    async fn reload_inner(&self) -> Result<ReloadReport, ReloadError> {
        let Some(path) = self.origin.reload_path() else {
            return Err(ReloadError::NotReloadable);
        };
        let mut current = self.current.lock().await;
        // The run-time silences and the directory carry over: they are the database's.
        let current_pipeline = self.pipeline.load();
        let stored = current_pipeline.silences.stored().clone();
        let directory = current_pipeline.directory.clone();
        let mut result = Config::load(path).and_then(|cfg| {
            let p = Pipeline::compile(&cfg, stored)?.with_directory(directory);
            Schedule::from_config(&cfg)?;
            Ok((cfg, p))
        });
        if let (Ok((cfg, _)), Some(resolver)) = (&result, &self.resolver)
            && let Err(e) = resolver.prepare(cfg).await
        {
            result = Err(e);
        }
        let (cfg, next) = match result {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: the new configuration is invalid; the running one stays");
                return Err(e.into());
            }
        };
        let restart_needed = restart_keys(&current, &cfg);
        let report = ReloadReport {
            sources: next.sources.len(),
            routes: next.router.routes().len(),
            restart_needed,
        };
        self.pipeline.store(Arc::new(next));
        *current = cfg;
        tracing::info!(sources = report.sources, routes = report.routes, restart_needed = ?report.restart_needed, "configuration reloaded");
        Ok(report)
    }
}

/// Keys read once at start-up whose value changed.
fn restart_keys(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |changed: bool, key: &'static str| {
        if changed {
            out.push(key);
        }
    };
    check(old.server.listen != new.server.listen, "server.listen");
    check(
        old.server.admin_listen != new.server.admin_listen,
        "server.admin_listen",
    );
    check(
        old.server.max_body != new.server.max_body,
        "server.max_body",
    );
    check(
        old.server.request_timeout != new.server.request_timeout,
        "server.request_timeout",
    );
    check(
        old.server.admin_token != new.server.admin_token
            || old.server.admin_auth != new.server.admin_auth
            || old.server.metrics_auth != new.server.metrics_auth,
        "server.admin_token/admin_auth/metrics_auth",
    );
    check(
        old.server.console != new.server.console
            || old.server.console_session != new.server.console_session,
        "server.console/console_session",
    );
    check(old.storage.url != new.storage.url, "storage.url");
    check(
        old.storage.retention != new.storage.retention,
        "storage.retention",
    );
    check(old.storage.lease != new.storage.lease, "storage.lease");
    check(old.roam.base_url != new.roam.base_url, "roam.base_url");
    check(
        old.roam.api_key.as_ref().map(|k| k.expose().to_string())
            != new.roam.api_key.as_ref().map(|k| k.expose().to_string()),
        "roam.api_key",
    );
    check(
        old.roam.rate_per_second != new.roam.rate_per_second || old.roam.burst != new.roam.burst,
        "roam.rate_per_second/burst",
    );
    check(
        old.delivery.retry_initial != new.delivery.retry_initial
            || old.delivery.retry_max != new.delivery.retry_max
            || old.delivery.give_up_after != new.delivery.give_up_after,
        "delivery",
    );
    check(
        old.log.level != new.log.level || old.log.format != new.log.format,
        "log",
    );
    let (a, b) = (&old.transcripts, &new.transcripts);
    check(
        a.enabled != b.enabled
            || a.schedule != b.schedule
            || a.timezone != b.timezone
            || a.source != b.source
            || a.lookback != b.lookback
            || a.overlap != b.overlap
            || a.internal_domains != b.internal_domains,
        "transcripts",
    );
    out
}
