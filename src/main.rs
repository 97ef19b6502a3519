//! The `roam-notify` command line: wiring only; the work lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use roam_notify::Application;
use roam_notify::cli::check;
use roam_notify::config::{CONFIG_PATH_ENV, Config};
use roam_notify::render::Templates;

// The request path allocates a JSON tree per webhook on two threads; mimalloc's
// per-thread heaps gave ~20% more webhooks/s than glibc malloc in the ingest bench.
// Built with `no_thp`: otherwise its arenas are backed by transparent huge pages where
// the kernel allows them (madvise), which took idle memory from 6.6 MB to 17.3 MB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "roam-notify",
    version,
    about = "Turns webhooks from CI/CD, monitoring and CRM tools into Roam messages, durably."
)]
struct Cli {
    /// TOML config file (layered over the built-in defaults; ROAM_NOTIFY__<SECTION>__<KEY>
    /// environment variables override both).
    #[arg(long, short, global = true, env = CONFIG_PATH_ENV)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: receive webhooks, post messages to Roam.
    Serve,
    /// Validate the config, compile every template and render each against its sample
    /// payload. Exit 0 when all is well, 1 otherwise.
    Check,
    /// Print the message a template makes of a payload file.
    Render {
        /// Template name, e.g. github/push (templates/github/push.hbs).
        #[arg(long, short)]
        template: String,
        /// JSON payload file.
        #[arg(long, short)]
        payload: PathBuf,
        /// Event name shown to the template as _event.name (default: from the template name).
        #[arg(long)]
        event: Option<String>,
        /// Source name shown to the template as _event.source.
        #[arg(long, default_value = "cli")]
        source: String,
        /// `card` (Block Kit, when the template has a card; the default) or `text`.
        #[arg(long, default_value = "card")]
        format: String,
        /// Print only the exact chat.post body (JSON, one per line), not the preview.
        #[arg(long)]
        json: bool,
    },
    /// Explain routing offline.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// See and fix the outbox: pending and dead messages, re-queue, drop.
    Outbox {
        #[command(subcommand)]
        command: OutboxCli,
    },
    /// Silence events for a while: add, list, expire (stored; the daemon applies them).
    Silence {
        #[command(subcommand)]
        command: roam_notify::cli::SilenceCommand,
    },
    /// Post-meeting transcripts: backfill a range on demand.
    Transcripts {
        #[command(subcommand)]
        command: roam_notify::cli::TranscriptsCommand,
    },
    /// List the chats the bot can see in Roam (every page of chat.list): name, kind,
    /// chat id and group id, to put in a route's `to`. Needs the API key.
    Chats {
        /// Only chats whose name or id contains this (case-insensitive).
        #[arg(long)]
        filter: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Roam's webhook subscription for transcripts: subscribe, unsubscribe.
    Roam {
        #[command(subcommand)]
        command: roam_notify::cli::RoamCommand,
    },
    /// Exit 0 if the daemon configured here answers GET /healthz (for Docker HEALTHCHECK).
    Healthcheck {
        /// Address to probe instead of server.listen.
        #[arg(long)]
        addr: Option<String>,
    },
}

#[derive(Subcommand)]
enum OutboxCli {
    /// Messages, newest first.
    List {
        /// pending, dead, delivered, dropped or all.
        #[arg(long, default_value = "all")]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One message in full: status, attempts, last error, the chat.post body.
    Show { id: i64 },
    /// Re-queue a dead or dropped message (fresh retries), or every dead one.
    Retry {
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all_dead: bool,
    },
    /// Give up on a pending or dead message: kept, marked dropped, never sent.
    Drop { id: i64 },
}

#[derive(Subcommand)]
enum RoutesCommand {
    /// Show which routes a payload matches, why the others do not, and the messages that
    /// would be sent. Signatures are not checked.
    Test {
        /// The source name (as in [[sources]]).
        #[arg(long, short)]
        source: String,
        /// Payload file, exactly as the sender posts it.
        #[arg(long, short)]
        payload: PathBuf,
        /// Use this event name instead of the one the source derives.
        #[arg(long, short)]
        event: Option<String>,
        /// A request header the source reads, e.g. "X-GitHub-Event: push" (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(cli.config),
        Command::Check => {
            let report = check::check(cli.config.as_deref());
            print!("{}", report.text);
            if report.problems == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Render {
            template,
            payload,
            event,
            source,
            format,
            json,
        } => render(
            cli.config, &template, &payload, event, &source, &format, json,
        ),
        Command::Healthcheck { addr } => healthcheck(cli.config, addr),
        Command::Outbox { command } => outbox(cli.config, command),
        Command::Silence { command } => silence(cli.config, command),
        Command::Chats { filter, json } => store_command(cli.config, |cfg| async move {
            roam_notify::cli::run_chats(&cfg, filter.as_deref(), json).await
        }),
        Command::Roam { command } => store_command(cli.config, |cfg| async move {
            roam_notify::cli::run_roam(&cfg, command).await
        }),
        Command::Transcripts { command } => store_command(cli.config, |cfg| async move {
            roam_notify::cli::run_transcripts(&cfg, command).await
        }),
        Command::Routes {
            command:
                RoutesCommand::Test {
                    source,
                    payload,
                    event,
                    headers,
                },
        } => routes_test(cli.config, &source, &payload, event.as_deref(), &headers),
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("roam-notify: config error: {e}");
        ExitCode::from(2)
    })
}

fn init_tracing(cfg: &Config) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log read through `docker logs`, journald
    // or a file keeps no escape codes. NO_COLOR (no-color.org) turns it off there too.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("roam-notify: cannot start the async runtime: {e}");
            ExitCode::from(1)
        })
}

fn serve(config: Option<PathBuf>) -> ExitCode {
    let cfg = match load_config(config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_tracing(&cfg);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let app = match Application::build(cfg).await {
            Ok(app) => app,
            Err(e) => {
                // One line, on stderr, whatever the log format: what to fix and where.
                eprintln!("roam-notify: {e}");
                return ExitCode::from(e.exit_code() as u8);
            }
        };
        match app.local_addr() {
            Ok(addr) => {
                tracing::info!(%addr, "listening; webhooks go to POST /hooks/<source name>")
            }
            Err(e) => tracing::warn!(error = %e, "listening (address unknown)"),
        }
        if let Some(addr) = app.admin_addr() {
            tracing::info!(%addr, "admin listener: GET /metrics, POST /-/reload");
        }
        let shutdown = CancellationToken::new();
        tokio::spawn(signal_shutdown(shutdown.clone()));
        tokio::spawn(reload_on_sighup(app.reloader()));
        match app.run_until_stopped(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::from(1)
            }
        }
    })
}

/// SIGHUP reloads the configuration; an invalid one is refused and logged.
async fn reload_on_sighup(reloader: std::sync::Arc<roam_notify::reload::Reloader>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; use POST /-/reload on the admin listener");
                return;
            }
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            // Success and refusal are both logged by the reloader.
            let _ = reloader.reload().await;
        }
    }
    #[cfg(not(unix))]
    drop(reloader);
}

/// SIGTERM (Docker, Kubernetes, systemd) or Ctrl-C starts a graceful shutdown.
async fn signal_shutdown(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the daemon gracefully");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    token.cancel();
}

fn render(
    config: Option<PathBuf>,
    template: &str,
    payload: &std::path::Path,
    event: Option<String>,
    source: &str,
    format: &str,
    json: bool,
) -> ExitCode {
    let format = match roam_notify::render::Format::parse(Some(format)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("roam-notify: --format {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match &config {
        Some(p) => match load_config(Some(p)) {
            Ok(c) => c,
            Err(code) => return code,
        },
        None => match Config::load(None) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("roam-notify: config error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let templates = match Templates::load(&cfg) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("roam-notify: config error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(payload) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("roam-notify: cannot read {}: {e}", payload.display());
            return ExitCode::from(1);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("roam-notify: {} is not valid JSON: {e}", payload.display());
            return ExitCode::from(1);
        }
    };
    let event = event.unwrap_or_else(|| template.replacen('/', ".", 1));
    match check::render(&templates, template, format, &event, source, &value) {
        Ok(preview) if json => {
            for r in &preview.requests {
                println!("{r}");
            }
            ExitCode::SUCCESS
        }
        Ok(preview) => {
            println!("{}", preview.readable);
            for r in &preview.requests {
                let pretty = serde_json::from_str::<serde_json::Value>(r)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or_else(|_| r.clone());
                println!(
                    "\n--- chat.post body (\"chat\" is the route's destination) ---\n{pretty}"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roam-notify: {e}");
            ExitCode::from(1)
        }
    }
}

fn outbox(config: Option<PathBuf>, command: OutboxCli) -> ExitCode {
    use roam_notify::cli::{OutboxCommand, run};
    let cmd = match command {
        OutboxCli::List {
            status,
            limit,
            json,
        } => OutboxCommand::List {
            status: Some(status),
            limit,
            json,
        },
        OutboxCli::Show { id } => OutboxCommand::Show { id },
        OutboxCli::Retry { id, all_dead } => OutboxCommand::Retry { id, all_dead },
        OutboxCli::Drop { id } => OutboxCommand::Drop { id },
    };
    store_command(config, |cfg| async move { run(&cfg, cmd).await })
}

fn silence(config: Option<PathBuf>, command: roam_notify::cli::SilenceCommand) -> ExitCode {
    store_command(config, |cfg| async move {
        roam_notify::cli::run_silence(&cfg, command).await
    })
}

/// Runs a command on the loaded config (most open the configured storage) and prints
/// its answer.
fn store_command<F, Fut>(config: Option<PathBuf>, run: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let cfg = match load_config(config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(run(cfg)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roam-notify: {e}");
            ExitCode::from(1)
        }
    }
}

fn routes_test(
    config: Option<PathBuf>,
    source: &str,
    payload: &std::path::Path,
    event: Option<&str>,
    headers: &[String],
) -> ExitCode {
    let body = match std::fs::read(payload) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("roam-notify: cannot read {}: {e}", payload.display());
            return ExitCode::from(1);
        }
    };
    let mut parsed = Vec::new();
    for h in headers {
        match h.split_once(':') {
            Some((k, v)) => parsed.push((k.trim().to_string(), v.trim().to_string())),
            None => {
                eprintln!("roam-notify: --header {h:?} is not \"Name: value\"");
                return ExitCode::from(1);
            }
        }
    }
    match check::explain_routes(config.as_deref(), source, event, &body, &parsed) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roam-notify: {e}");
            ExitCode::from(1)
        }
    }
}

fn healthcheck(config: Option<PathBuf>, addr: Option<String>) -> ExitCode {
    let addr = match addr {
        Some(a) => a,
        None => match load_config(config.as_deref()) {
            Ok(cfg) => {
                // With TLS on the webhook port, probe the admin listener (plain HTTP).
                let target = if cfg.server.tls_cert.is_some() {
                    match cfg.admin_addr() {
                        Some(a) => a,
                        None => {
                            eprintln!(
                                "roam-notify: the webhook listener uses TLS and admin_listen is off; give --addr of a plain-HTTP listener"
                            );
                            return ExitCode::from(2);
                        }
                    }
                } else {
                    cfg.listen_addr()
                };
                let mut a = target;
                if a.ip().is_unspecified() {
                    a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                a.to_string()
            }
            Err(code) => return code,
        },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(probe(&addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roam-notify: healthcheck of {addr} failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// A plain HTTP/1.1 GET of /healthz: no TLS stack or CA store needed in the image.
async fn probe(addr: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).to_string();
        if head.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(format!(
                "unexpected answer: {}",
                head.lines().next().unwrap_or("")
            ))
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| "no answer within 5s".to_string())?
}
