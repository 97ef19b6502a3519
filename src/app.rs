//! Wiring: `Application::build` turns a `Config` into a bound, ready daemon; tests and
//! `serve` share it. The caller owns the shutdown signal (a `CancellationToken`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{AdminAuth, Config, ConfigError};
use arc_swap::ArcSwap;
use axum_server::tls_rustls::RustlsConfig;

use crate::delivery::{DeliveryStatus, DeliveryWorker, Outlet, RetryPolicy};
use crate::directory::{Directory, Resolver};
use crate::grouping::flusher::Flusher;
use crate::http::{self, AppState, Shared};
use crate::ingest::{Ingest, Pipeline};
use crate::metrics::Metrics;
use crate::pacer::Pacer;
use crate::reload::Reloader;
use crate::roam::{RoamClient, RoamError};
use crate::silences;
use crate::storage::committer::CommitHandle;
use crate::storage::leader::Leader;
use crate::storage::{ReplicaSettings, Store, StoreError};
use crate::transcripts::schedule::Schedule;
use crate::transcripts::sweep::Sweeper;
use crate::transcripts::{Settings as TranscriptSettings, TranscriptStatus};

/// Why the daemon could not start. `exit_code` is 2 for problems the operator must fix
/// in the configuration (including a wrong Roam key), 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("config error: {0}")]
    Config(#[from] ConfigError),
    #[error("Roam API key problem: {0}")]
    RoamKey(String),
    #[error("{0}")]
    Storage(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the HTTP client: {0}")]
    HttpClient(String),
    #[error("TLS: {0}")]
    Tls(String),
}

impl StartError {
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Config(_) | StartError::RoamKey(_) | StartError::Tls(_) => 2,
            _ => 1,
        }
    }
}

pub struct Application {
    listener: TcpListener,
    /// Serve the webhook listener over TLS (`server.tls_cert` / `tls_key`).
    tls: Option<RustlsConfig>,
    admin: Option<TcpListener>,
    /// How the admin listener is guarded.
    admin_auth: AdminAuth,
    /// The console's session length; None: the console is off.
    console: Option<Duration>,
    state: AppState,
    worker: DeliveryWorker,
    flusher: Flusher,
    /// Transcript processing, when enabled and a Roam key is set.
    transcripts: Option<(Schedule, Arc<Sweeper>)>,
    committer: JoinHandle<()>,
    store: Store,
    /// Whether this replica runs the single-instance background work.
    leader: Leader,
    request_timeout: Duration,
    shutdown_timeout: Duration,
    retention: Duration,
    /// Names and emails: kept fresh every `directory_refresh`.
    resolver: Resolver,
    directory_refresh: Duration,
}

impl Application {
    /// Validates everything, opens storage, checks the Roam key, binds the listener.
    pub async fn build(cfg: Config) -> Result<Application, StartError> {
        let pipeline = Pipeline::compile(&cfg, silences::Stored::default())?;
        let schedule = Schedule::from_config(&cfg)?;
        if pipeline.sources.values().all(|s| s.internal) {
            tracing::warn!(
                "no [[sources]] configured: every webhook gets 404 (see config.toml.example)"
            );
        }
        let mut names: Vec<String> = pipeline
            .sources
            .values()
            .filter(|s| !s.internal)
            .map(|s| format!("/hooks/{} ({})", s.name, s.kind))
            .collect();
        names.sort();
        tracing::info!(sources = ?names, routes = pipeline.router.routes().len(), "configuration loaded");
        for s in pipeline.sources.values().filter(|s| s.unauthenticated()) {
            tracing::warn!(source = %s.name, "source accepts unauthenticated requests (auth = \"none\"); anyone who can reach /hooks/{} can post", s.name);
        }

        let metrics = Arc::new(Metrics::default());
        let outlet = match &cfg.roam.api_key {
            None => {
                tracing::warn!(
                    "dry-run: no Roam API key configured (roam.api_key / ROAM_NOTIFY_ROAM_API_KEY); messages are logged, not posted"
                );
                Outlet::DryRun
            }
            Some(key) => {
                let client = RoamClient::new(&cfg.roam, key.clone())
                    .map_err(|e| StartError::HttpClient(e.to_string()))?
                    .with_metrics(metrics.clone());
                check_roam_key(&client, &cfg.roam.base_url).await?;
                // Only when transcripts are processed: otherwise the queue would fill unread.
                if cfg.transcripts.enabled && cfg.transcripts.subscribe {
                    subscribe_transcripts(&client, &cfg).await;
                }
                Outlet::Roam(client)
            }
        };

        let outlet_client = match &outlet {
            Outlet::Roam(c) => Some(c.clone()),
            Outlet::DryRun => None,
        };
        let store = Store::open_with(
            cfg.storage.url.expose(),
            ReplicaSettings {
                lease: cfg.storage.lease,
            },
        )
        .await?;
        let leader = Leader::new(store.clone());
        let pacer = Arc::new(
            Pacer::new(cfg.roam.rate_per_second, cfg.roam.burst, metrics.clone()).sharing(&store),
        );
        // #Names and emails in the config: from the cache, asked again, and checked.
        let resolver = Resolver::new(
            Directory::default(),
            outlet_client.clone(),
            pacer.clone(),
            store.clone(),
        );
        resolver.prepare(&cfg).await?;
        let pipeline = pipeline.with_directory(resolver.directory.clone());
        let recovered = store.recover_in_flight().await?;
        if !recovered.is_empty() {
            tracing::warn!(messages = ?recovered, "messages were in flight when the daemon last stopped; they will be re-sent and may appear twice in Roam");
        }

        let addr = cfg.listen_addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let tls = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            _ => None,
        };
        let admin_auth = cfg.admin_auth()?;
        match (&admin_auth, cfg.admin_addr()) {
            (AdminAuth::Open, Some(addr)) => tracing::warn!(%addr,
                "admin_auth = \"none\": anyone who reaches the admin listener can add silences, drop or re-send messages and read their contents"),
            (AdminAuth::LoopbackOnly, Some(addr)) => tracing::warn!(%addr,
                "no server.admin_token: the admin API is open to every process on this host; set one to require it"),
            _ => {}
        }
        let admin = match cfg.admin_addr() {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };

        let wake = Arc::new(Notify::new());
        let wake_flusher = Arc::new(Notify::new());
        let (committer, committer_task) =
            CommitHandle::spawn(store.clone(), wake.clone(), wake_flusher.clone());
        pipeline.silences.stored().reload(&store).await?;
        let pipeline = Arc::new(ArcSwap::from_pointee(pipeline));
        let ingest = Ingest::new(committer, metrics.clone());
        let flusher = Flusher::new(
            store.clone(),
            Pipeline::current_templates(&pipeline),
            wake.clone(),
            wake_flusher,
            metrics.clone(),
        )
        .with_leader(leader.clone());
        let delivery = Arc::new(DeliveryStatus::default());
        let retry = RetryPolicy {
            initial: cfg.delivery.retry_initial,
            max: cfg.delivery.retry_max,
            give_up_after: cfg.delivery.give_up_after,
        };
        let worker = DeliveryWorker::new(
            store.clone(),
            outlet,
            pacer.clone(),
            retry,
            wake.clone(),
            delivery.clone(),
            metrics.clone(),
        )
        .with_directory(resolver.directory.clone())
        .with_templates(Pipeline::current_templates(&pipeline));
        let reloader = Arc::new(
            Reloader::new(cfg.clone(), pipeline.clone(), metrics.clone())
                .with_resolver(resolver.clone()),
        );
        let transcript_status = Arc::new(TranscriptStatus::default());
        let transcript_wake = Arc::new(Notify::new());
        let transcripts = match (schedule, &outlet_client) {
            (None, _) => {
                transcript_status
                    .update(|s| s.disabled = Some("[transcripts] enabled = false".into()));
                None
            }
            (Some(_), None) => {
                tracing::warn!(
                    "[transcripts] is enabled but no Roam API key is set (dry-run): transcripts cannot be fetched, so none are processed"
                );
                transcript_status.update(|s| s.disabled = Some("no Roam API key (dry-run)".into()));
                None
            }
            (Some(schedule), Some(client)) => {
                let sweeper = Arc::new(Sweeper::new(
                    store.clone(),
                    client.clone(),
                    pacer.clone(),
                    pipeline.clone(),
                    ingest.clone(),
                    TranscriptSettings::from_config(&cfg.transcripts),
                    transcript_status.clone(),
                ));
                Some((schedule, sweeper))
            }
        };
        let state = Arc::new(Shared {
            transcripts: transcripts.as_ref().map(|(_, s)| s.clone()),
            transcript_status,
            transcript_wake,
            wake_delivery: wake.clone(),
            metrics: metrics.clone(),
            reloader,
            pipeline,
            ingest,
            store: store.clone(),
            leader: leader.clone(),
            dry_run: cfg.dry_run(),
            max_body: cfg.server.max_body,
            pacer,
            delivery,
            recent: Default::default(),
        });
        Ok(Application {
            listener,
            tls,
            admin,
            admin_auth,
            console: cfg.server.console.then_some(cfg.server.console_session),
            state,
            worker,
            flusher,
            transcripts,
            committer: committer_task,
            store,
            leader,
            request_timeout: cfg.server.request_timeout,
            shutdown_timeout: cfg.server.shutdown_timeout,
            retention: cfg.storage.retention,
            resolver,
            directory_refresh: cfg.roam.directory_refresh,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address, if it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Reloads the configuration (what SIGHUP does).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.state.reloader.clone()
    }

    /// Serves until `shutdown` fires, then drains: stops accepting, lets in-flight
    /// requests finish, lets the worker finish its current send, all within
    /// `server.shutdown_timeout`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let app = http::router(self.state.clone(), self.request_timeout);
        let worker = tokio::spawn(self.worker.run(shutdown.clone()));
        let flusher = tokio::spawn(self.flusher.run(shutdown.clone()));
        let mut transcript_tasks = Vec::new();
        if let Some((schedule, sweeper)) = self.transcripts {
            transcript_tasks.push(tokio::spawn(crate::transcripts::schedule::run(
                schedule,
                sweeper.clone(),
                shutdown.clone(),
            )));
            transcript_tasks.push(tokio::spawn(sweeper.run_queue(
                self.leader.clone(),
                self.state.transcript_wake.clone(),
                shutdown.clone(),
            )));
        }
        let silences = tokio::spawn(
            self.state
                .pipeline
                .load()
                .silences
                .stored()
                .clone()
                .keep_fresh(self.store.clone(), shutdown.clone()),
        );
        let directory = tokio::spawn(self.resolver.keep_fresh(
            self.directory_refresh,
            self.leader.clone(),
            shutdown.clone(),
        ));
        let pruner = tokio::spawn(prune_loop(
            self.store.clone(),
            self.leader.clone(),
            self.retention,
            shutdown.clone(),
        ));
        let admin = self.admin.map(|l| {
            let router =
                http::admin_router(self.state.clone(), self.admin_auth.clone(), self.console)
                    .into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(
                axum::serve(l, router)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .into_future(),
            )
        });
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let mut server = match self.tls {
            None => tokio::spawn(
                axum::serve(self.listener, service)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .into_future(),
            ),
            Some(tls) => {
                let handle = axum_server::Handle::new();
                let stop = handle.clone();
                let token = shutdown.clone();
                let grace = self.shutdown_timeout;
                tokio::spawn(async move {
                    token.cancelled().await;
                    stop.graceful_shutdown(Some(grace));
                });
                let listener = self.listener.into_std()?;
                let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle);
                tokio::spawn(async move { server.serve(service).await })
            }
        };

        let served = tokio::select! {
            r = &mut server => Some(r),
            _ = shutdown.cancelled() => None,
        };
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let result = match served {
            Some(r) => flatten(r),
            None => match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(r) => flatten(r),
                Err(_) => {
                    tracing::warn!("requests still open after the shutdown timeout; closing them");
                    server.abort();
                    Ok(())
                }
            },
        };
        shutdown.cancel();
        if tokio::time::timeout_at(deadline, worker).await.is_err() {
            tracing::warn!(
                "delivery worker did not stop within the shutdown timeout; its message stays queued"
            );
        }
        let _ = pruner.await;
        let _ = flusher.await;
        if let Some(a) = admin {
            let _ = tokio::time::timeout_at(deadline, a).await;
        }
        let _ = silences.await;
        let _ = directory.await;
        for t in transcript_tasks {
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                tracing::warn!(
                    "transcript processing did not stop within the shutdown timeout; it resumes from its checkpoint"
                );
            }
        }
        drop(self.state);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.committer).await;
        self.leader.resign().await;
        self.store.close().await;
        tracing::info!("stopped");
        result
    }
}

/// `[transcripts] subscribe`: asks Roam to post `transcript:saved` to the transcript
/// source's `public_url`. A failure is logged, not fatal: the scheduled sweep still finds
/// every transcript.
async fn subscribe_transcripts(client: &RoamClient, cfg: &Config) {
    let Some(url) = cfg.transcript_source_url() else {
        return; // the config check requires it
    };
    match client.webhook_subscribe(&url, "transcript.saved").await {
        Ok(s) => tracing::info!(subscription = %s.id, url = %s.url,
            "Roam posts transcript:saved here (transcripts.subscribe)"),
        Err(e) => tracing::error!(error = %e, url = %url,
            "could not subscribe to Roam's transcript:saved (the key needs webhook:write; the URL must be HTTPS); the scheduled sweep still posts every transcript"),
    }
}

/// The rustls server config from PEM files; every problem names the file.
fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> Result<RustlsConfig, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| StartError::Tls(format!("server.tls_cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "server.tls_cert {}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError::Tls(format!("server.tls_key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| StartError::Tls(format!("server.tls_cert / tls_key: {e}")))?;
    let mut config = config;
    // The server speaks HTTP/1.1 only (axum is built without http2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

/// Deletes old delivered messages and events at start and then hourly (on the leading
/// replica; the others check each minute whether they lead).
async fn prune_loop(
    store: Store,
    leader: Leader,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !leader.holds().await {
                    // Try again each minute until this replica leads.
                    tick.reset_after(Duration::from_secs(60));
                    continue;
                }
                let cutoff = crate::storage::now_ms() - retention.as_millis() as i64;
                match store.prune(cutoff).await {
                    Ok((0, 0)) => {}
                    Ok((m, e)) => tracing::info!(messages = m, events = e, "pruned delivered messages and events past storage.retention"),
                    Err(e) => tracing::warn!(error = %e, "pruning failed; will retry in an hour"),
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
}

fn flatten(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    match r {
        Ok(inner) => inner,
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// `token.info` at start-up: a revoked key or a personal token stops start-up with what to
/// fix; Roam being unreachable does not (the outbox waits for it).
async fn check_roam_key(client: &RoamClient, base_url: &str) -> Result<(), StartError> {
    const HOW: &str = "create an organization API key in Roam Administration > Developer (Add ApiClient, \
                       authorization type \"API key\", scope chat:send_message) and set ROAM_NOTIFY_ROAM_API_KEY";
    match client.token_info().await {
        Ok(info) => {
            if info.addr.starts_with("U-") {
                return Err(StartError::RoamKey(format!(
                    "the key belongs to a user ({}), i.e. it is a personal access token; roam-notify posts as the \
                     organization's bot and needs an organization API key: {HOW}",
                    info.addr
                )));
            }
            if !info.scopes.is_empty()
                && !info
                    .scopes
                    .iter()
                    .any(|s| s == "chat:send_message" || s == "chat:write")
            {
                return Err(StartError::RoamKey(format!(
                    "the key lacks the chat:send_message scope (it has: {}); tick chat:send_message for the API client in Roam Administration > Developer",
                    info.scopes.join(", ")
                )));
            }
            let org = info.roam.as_ref().map(|r| r.name.as_str()).unwrap_or("?");
            tracing::info!(bot = %info.addr, organization = %org, "Roam API key accepted");
            Ok(())
        }
        Err(RoamError::Unauthorized { status, detail }) => {
            Err(StartError::RoamKey(if status == 403 {
                format!(
                    "Roam answered 403 ({detail}): this looks like a personal access token; {HOW}"
                )
            } else {
                format!(
                    "Roam rejected the key ({status}: {detail}); it is wrong, revoked or archived: {HOW}"
                )
            }))
        }
        Err(RoamError::Rejected {
            status: 403,
            detail,
        }) => Err(StartError::RoamKey(format!(
            "Roam answered 403 to token.info ({detail}); {HOW}"
        ))),
        Err(e) => {
            tracing::warn!(error = %e, base_url, "could not check the Roam API key now; starting anyway, messages wait in the outbox until Roam answers");
            Ok(())
        }
    }
}
