//! The command line's work (main.rs only wires it): offline checks (`check.rs`: check,
//! render, routes test), the commands that talk to Roam (`roam.rs`: chats, roam
//! subscribe/unsubscribe), and operator commands on the stored state: the outbox
//! (`roam-notify outbox …`: see pending and dead messages with their reasons, re-queue or
//! drop them), silences (`roam-notify silence …`) and transcript backfills. These open
//! the same database as the daemon (SQLite allows it while the daemon runs); a re-queued
//! message is picked up at the worker's next pass (within a minute, or at once on the
//! next webhook).

pub mod check;
mod names;
mod roam;

use std::fmt::Write as _;

use crate::config::Config;
use crate::silences::{self, SilenceRequest};
use crate::storage::{MessageQuery, MessageRecord, Store, now_ms, status_filter};
pub use roam::{RoamCommand, run_chats, run_roam};

#[derive(Debug)]
pub enum OutboxCommand {
    List {
        status: Option<String>,
        limit: i64,
        json: bool,
    },
    Show {
        id: i64,
    },
    Retry {
        id: Option<i64>,
        all_dead: bool,
    },
    Drop {
        id: i64,
    },
}

pub async fn run(cfg: &Config, cmd: OutboxCommand) -> Result<String, String> {
    let store = Store::open(cfg.storage.url.expose())
        .await
        .map_err(|e| e.to_string())?;
    // A message rendered when it is sent is shown as the configured templates make it
    // now (as in the console and the admin API), or says why it cannot be.
    let templates = crate::render::Templates::load(cfg);
    let preview = |m: &mut MessageRecord| match &templates {
        Ok(t) => crate::compose::fill_preview(t, m),
        Err(e) if m.render.is_some() && m.request.is_empty() => {
            m.render_error = Some(format!("not shown: the templates cannot be loaded: {e}"));
        }
        Err(_) => {}
    };
    let out = match cmd {
        OutboxCommand::List {
            status,
            limit,
            json,
        } => {
            let query = MessageQuery {
                status: status_filter(status.as_deref())?,
                limit,
                ..Default::default()
            };
            let mut rows = store
                .list_messages(&query)
                .await
                .map_err(|e| e.to_string())?;
            rows.iter_mut().for_each(preview);
            if json {
                serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())? + "\n"
            } else {
                table(&rows)
            }
        }
        OutboxCommand::Show { id } => {
            match store.get_message(id).await.map_err(|e| e.to_string())? {
                Some(mut m) => {
                    preview(&mut m);
                    serde_json::to_string_pretty(&m).map_err(|e| e.to_string())? + "\n"
                }
                None => return Err(format!("no message {id}")),
            }
        }
        OutboxCommand::Retry { id: Some(id), .. } => {
            if store.requeue(id).await.map_err(|e| e.to_string())? {
                format!("message {id} re-queued\n")
            } else {
                return Err(format!(
                    "message {id} is not dead or dropped (see `outbox show {id}`)"
                ));
            }
        }
        OutboxCommand::Retry {
            id: None,
            all_dead: true,
        } => {
            let n = store.requeue_all_dead().await.map_err(|e| e.to_string())?;
            format!("{n} dead message(s) re-queued\n")
        }
        OutboxCommand::Retry {
            id: None,
            all_dead: false,
        } => return Err("give a message id or --all-dead".into()),
        OutboxCommand::Drop { id } => {
            if store.drop_message(id).await.map_err(|e| e.to_string())? {
                format!("message {id} dropped (kept, never sent)\n")
            } else {
                return Err(format!(
                    "message {id} is not pending or dead (see `outbox show {id}`)"
                ));
            }
        }
    };
    store.close().await;
    Ok(out)
}

fn table(rows: &[MessageRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>6}  {:<9}  {:>3}  {:>8}  {:<20}  {:<40}  {:<32}  last error",
        "id", "status", "try", "age", "route", "chat", "event"
    );
    let now = now_ms();
    for m in rows {
        let age = humantime::format_duration(std::time::Duration::from_secs(
            ((now - m.created_at).max(0) / 1000) as u64,
        ))
        .to_string();
        let age: String = age.split_whitespace().take(2).collect::<Vec<_>>().join("");
        let _ = writeln!(
            out,
            "{:>6}  {:<9}  {:>3}  {:>8}  {:<20}  {:<40}  {:<32}  {}",
            m.id,
            m.status,
            m.attempts,
            age,
            m.route,
            m.chat,
            m.event,
            m.last_error.as_deref().unwrap_or("")
        );
    }
    if rows.is_empty() {
        out.push_str("(no messages)\n");
    }
    out
}

/// `roam-notify silence …`: silences stored in the database, read by the running daemon
/// within `SILENCE_REFRESH` (see `app`). Also the command line's definition.
#[derive(Debug, clap::Subcommand)]
pub enum SilenceCommand {
    /// Add a silence: matching events are not sent until it ends.
    Add {
        /// A field condition: path=value, path!=value, path=~regex or path!~regex
        /// (repeatable; all must hold), e.g. commonLabels.alertname=DiskFull.
        #[arg(long = "match", short = 'm')]
        matchers: Vec<String>,
        /// Only events from this source.
        #[arg(long)]
        source: Option<String>,
        /// Only events whose name matches this pattern (`*` globs; repeatable).
        #[arg(long = "event")]
        events: Vec<String>,
        /// Only messages of this route (repeatable).
        #[arg(long = "route")]
        routes: Vec<String>,
        /// Start (RFC 3339); default now.
        #[arg(long)]
        starts: Option<String>,
        /// How long, e.g. 2h, 30m.
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "until")]
        duration: Option<std::time::Duration>,
        /// End (RFC 3339), instead of --duration.
        #[arg(long)]
        until: Option<String>,
        /// Why (shown in logs and `silence list`).
        #[arg(long)]
        comment: String,
        /// Who added it.
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Active and pending silences (with --all, expired ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire { id: i64 },
}

pub async fn run_silence(cfg: &Config, cmd: SilenceCommand) -> Result<String, String> {
    let store = Store::open(cfg.storage.url.expose())
        .await
        .map_err(|e| e.to_string())?;
    let out = match cmd {
        SilenceCommand::Add {
            matchers,
            source,
            events,
            routes,
            starts,
            duration,
            until,
            comment,
            by,
        } => {
            let (id, start, end) = silences::create(
                &store,
                SilenceRequest {
                    matchers,
                    source,
                    events,
                    routes,
                    starts,
                    duration: duration.map(|d| humantime::format_duration(d).to_string()),
                    until,
                    comment,
                    created_by: by,
                },
            )
            .await?;
            format!(
                "silence #{id} added, {} to {} (a running daemon applies it within {}s)\n",
                fmt_ms(start),
                fmt_ms(end),
                silences::REFRESH.as_secs()
            )
        }
        SilenceCommand::List { all } => {
            let rows = store.list_silences(all).await.map_err(|e| e.to_string())?;
            let mut out = String::new();
            if rows.is_empty() {
                out.push_str("no silences\n");
            }
            for s in rows {
                let state = if s.expired || s.ends_at <= now_ms() {
                    "expired"
                } else if s.starts_at > now_ms() {
                    "pending"
                } else {
                    "active"
                };
                let _ = writeln!(
                    out,
                    "#{} {state} {} → {} by {}: {}\n    {}",
                    s.id,
                    fmt_ms(s.starts_at),
                    fmt_ms(s.ends_at),
                    s.created_by,
                    s.comment,
                    s.matcher
                );
            }
            out
        }
        SilenceCommand::Expire { id } => {
            if store.expire_silence(id).await.map_err(|e| e.to_string())? {
                format!("silence #{id} expired\n")
            } else {
                return Err(format!("no active silence #{id}"));
            }
        }
    };
    store.close().await;
    Ok(out)
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// `roam-notify transcripts …`
#[derive(Debug, clap::Subcommand)]
pub enum TranscriptsCommand {
    /// Process the transcripts of a time range now (the checkpoint is neither used nor
    /// moved). Transcripts already posted are skipped; a running daemon delivers the
    /// messages (within a minute).
    Backfill {
        /// Start of the range: a date (2026-11-01, UTC) or an RFC 3339 time.
        #[arg(long)]
        since: String,
        /// End of the range (default: now).
        #[arg(long)]
        until: Option<String>,
        /// Fetch and render, print the messages, commit nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A date (`2026-11-01`, midnight UTC) or an RFC 3339 time.
fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    crate::silences::parse_instant(s)
        .map(|ms| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

pub async fn run_transcripts(cfg: &Config, cmd: TranscriptsCommand) -> Result<String, String> {
    use std::sync::Arc;

    use crate::ingest::{Ingest, Pipeline};
    use crate::metrics::Metrics;
    use crate::pacer::Pacer;
    use crate::roam::RoamClient;
    use crate::storage::committer::CommitHandle;
    use crate::transcripts::sweep::{Range, Sweeper};
    use crate::transcripts::{Settings, TranscriptStatus};

    let TranscriptsCommand::Backfill {
        since,
        until,
        dry_run,
    } = cmd;
    let range = Range {
        since: parse_since(&since)?,
        until: until.as_deref().map(parse_since).transpose()?,
    };
    let Some(key) = cfg.roam.api_key.clone() else {
        return Err(
            "transcripts are fetched from Roam: set roam.api_key (or ROAM_NOTIFY_ROAM_API_KEY)"
                .into(),
        );
    };
    let pipeline =
        Pipeline::compile(cfg, Default::default()).map_err(|e| format!("config error: {e}"))?;
    let client = RoamClient::new(&cfg.roam, key).map_err(|e| e.to_string())?;
    let store = Store::open(cfg.storage.url.expose())
        .await
        .map_err(|e| e.to_string())?;
    let (committer, writer) =
        CommitHandle::spawn(store.clone(), Default::default(), Default::default());
    let metrics = Arc::new(Metrics::default());
    let sweeper = Sweeper::new(
        store.clone(),
        client,
        Arc::new(
            Pacer::new(cfg.roam.rate_per_second, cfg.roam.burst, metrics.clone()).sharing(&store),
        ),
        Arc::new(arc_swap::ArcSwap::from_pointee(pipeline)),
        Ingest::new(committer, metrics.clone()),
        Settings::from_config(&cfg.transcripts),
        Arc::new(TranscriptStatus::default()),
    );
    let never = tokio_util::sync::CancellationToken::new();
    let report = sweeper
        .sweep("backfill", Some(range), dry_run, &never)
        .await
        .map_err(|e| e.to_string());
    drop(sweeper);
    let _ = writer.await;
    store.close().await;
    let r = report?;
    let mut out = format!(
        "{}: {} listed, {} {}, {} already posted, {} still live, {} failed ({} pages)\n",
        if dry_run { "dry run" } else { "backfill" },
        r.listed,
        r.processed,
        if dry_run { "would be posted" } else { "posted" },
        r.already,
        r.skipped_live,
        r.failed,
        r.pages
    );
    for (id, route, chat, text) in &r.planned {
        let _ = writeln!(out, "\ntranscript {id} → route {route} posts to {chat}:");
        for line in text.lines() {
            let _ = writeln!(out, "    | {line}");
        }
    }
    if r.failed > 0 {
        return Err(format!("{out}some transcripts failed; see the log"));
    }
    Ok(out)
}
