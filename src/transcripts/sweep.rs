//! A transcript sweep, and the webhook queue, through one path: fetch, route, commit.
//!
//! Checkpoint rule: after a complete run the checkpoint becomes the start of the
//! earliest transcript that could not be finished (still live, or `transcript.info`
//! failed), or else the time the run started. The next run lists from the checkpoint
//! minus `overlap`, so whether Roam's `after` compares a meeting's start or its end,
//! nothing unfinished falls behind the window; already-committed transcripts in the
//! overlap are recognised (`events`) without a `transcript.info` call.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::schedule::Schedule;
use super::{Settings, TranscriptStatus};
use crate::directory::{Lookup, user_id};
use crate::inbound::roam::transcript::{delivery_id, known_user, transcript_event};
use crate::ingest::{Ingest, Pipeline};
use crate::metrics::Metrics;
use crate::pacer::Pacer;
use crate::roam::blocks::readable;
use crate::roam::{RoamClient, RoamError};
use crate::storage::leader::Leader;
use crate::storage::{Store, StoreError};

/// A queued transcript still failing after this many tries is dropped (the sweep's
/// listing remains the safety net).
const MAX_QUEUE_ATTEMPTS: i64 = 100;
/// How often the queue is retried without a new webhook.
const QUEUE_RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("a sweep is already running")]
    Busy,
    #[error("{0}")]
    Roam(#[from] RoamError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot commit the transcript event: {0}")]
    Commit(String),
    #[error("no source named {0:?} (transcripts.source) in the running config")]
    NoSource(String),
}

/// What one transcript came to.
#[derive(Debug)]
pub enum Outcome {
    Posted {
        messages: usize,
    },
    /// Its event was committed before (by another trigger or an earlier run).
    Already,
    /// The meeting has not ended yet.
    Live,
    /// Dry run: the messages it would produce (route, chat, text).
    Planned(Vec<(String, String, String)>),
}

/// A range for `transcripts backfill`: the checkpoint is neither used nor moved.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct SweepReport {
    pub trigger: String,
    pub pages: usize,
    pub listed: usize,
    pub processed: usize,
    pub already: usize,
    pub skipped_live: usize,
    pub failed: usize,
    pub checkpoint: Option<String>,
    pub interrupted: bool,
    /// Dry run: (transcript id, route, chat, text).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<(String, String, String, String)>,
}

pub struct Sweeper {
    store: Store,
    client: RoamClient,
    pacer: Arc<Pacer>,
    pipeline: Arc<ArcSwap<Pipeline>>,
    ingest: Ingest,
    settings: Settings,
    status: Arc<TranscriptStatus>,
    metrics: Arc<Metrics>,
    /// Held for the length of a sweep: runs never overlap.
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper")
            .field("source", &self.settings.source)
            .finish()
    }
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.filter(|s| !s.is_empty())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Sweeper {
    pub fn new(
        store: Store,
        client: RoamClient,
        pacer: Arc<Pacer>,
        pipeline: Arc<ArcSwap<Pipeline>>,
        ingest: Ingest,
        settings: Settings,
        status: Arc<TranscriptStatus>,
    ) -> Sweeper {
        Sweeper {
            store,
            client,
            pacer,
            pipeline,
            metrics: ingest.metrics().clone(),
            ingest,
            settings,
            status,
            running: tokio::sync::Mutex::new(()),
        }
    }

    pub fn status(&self) -> &TranscriptStatus {
        &self.status
    }

    /// The scheduled run at `tick` (unix ms). With several replicas the first to claim it
    /// runs it and the others skip it; a database error skips it too (the next run
    /// catches up from the checkpoint). A run cut short by shutdown is given back, so a
    /// restart (or another replica) runs it.
    pub async fn run_scheduled(&self, tick: i64, trigger: &str, shutdown: &CancellationToken) {
        const JOB: &str = "transcript_sweep";
        match self.store.claim_tick(JOB, tick).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    tick,
                    "this scheduled transcript sweep is run by another replica"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim the scheduled transcript sweep; skipping it, the next run catches up");
                return;
            }
        }
        let report = self.run_logged(trigger, shutdown).await;
        if shutdown.is_cancelled()
            && report.is_none_or(|r| r.interrupted)
            && let Err(e) = self.store.release_tick(JOB, tick).await
        {
            tracing::warn!(error = %e, "cannot give back the interrupted sweep; it can be run again in ten minutes");
        }
    }

    /// Whether a scheduled run was missed: no run recorded, or the last one is before
    /// the latest time the schedule names.
    pub async fn missed_run(&self, schedule: &Schedule) -> bool {
        let last = self
            .store
            .transcript_state("last_run_at")
            .await
            .ok()
            .flatten()
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis);
        match (last, schedule.last_at_or_before(Utc::now())) {
            (None, _) => true,
            (Some(last), Some(due)) => last < due,
            (Some(_), None) => false,
        }
    }

    /// A sweep plus the webhook queue, with the outcome logged and shown in `/readyz`.
    pub async fn run_logged(
        &self,
        trigger: &str,
        shutdown: &CancellationToken,
    ) -> Option<SweepReport> {
        let result = self.sweep(trigger, None, false, shutdown).await;
        let queue = self.drain_queue(shutdown).await;
        let now = Utc::now().to_rfc3339();
        match result {
            Ok(r) => {
                let ok = r.failed == 0 && !r.interrupted;
                self.metrics
                    .transcript_runs
                    .inc(&[if ok { "ok" } else { "failed" }]);
                tracing::info!(
                    trigger,
                    listed = r.listed,
                    processed = r.processed,
                    already = r.already,
                    skipped_live = r.skipped_live,
                    failed = r.failed,
                    pages = r.pages,
                    queue_done = queue,
                    checkpoint = r.checkpoint.as_deref().unwrap_or(""),
                    "transcript sweep finished"
                );
                self.status.update(|s| {
                    s.last_run_at = Some(now);
                    s.last_run_ok = Some(ok);
                    if r.checkpoint.is_some() {
                        s.checkpoint = r.checkpoint.clone();
                    }
                });
                Some(r)
            }
            Err(SweepError::Busy) => {
                tracing::info!(
                    trigger,
                    "a transcript sweep is already running; this trigger is skipped"
                );
                None
            }
            Err(e) => {
                self.metrics.transcript_runs.inc(&["failed"]);
                tracing::warn!(trigger, error = %e, "transcript sweep failed; the next run starts from the same checkpoint");
                self.status.update(|s| {
                    s.last_run_at = Some(now);
                    s.last_run_ok = Some(false);
                    s.last_error = Some(e.to_string());
                });
                None
            }
        }
    }

    /// Lists transcripts (from the checkpoint, or `range`) and processes the finished,
    /// new ones. `dry_run` commits nothing and returns the messages instead.
    pub async fn sweep(
        &self,
        trigger: &str,
        range: Option<Range>,
        dry_run: bool,
        shutdown: &CancellationToken,
    ) -> Result<SweepReport, SweepError> {
        let _running = self.running.try_lock().map_err(|_| SweepError::Busy)?;
        let started = Utc::now();
        // `t - d`, or 1970 when a configured window reaches further back than that.
        let back = |t: DateTime<Utc>, d: std::time::Duration| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| t.checked_sub_signed(d))
                .map_or(DateTime::<Utc>::UNIX_EPOCH, |a| {
                    a.max(DateTime::<Utc>::UNIX_EPOCH)
                })
        };
        let after = match range {
            Some(r) => r.since,
            None => {
                let checkpoint = self.store.transcript_state("checkpoint").await?;
                match parse_time(checkpoint.as_deref()) {
                    Some(c) => back(c, self.settings.overlap),
                    None => back(started, self.settings.lookback),
                }
            }
        };
        let after_text = after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut report = SweepReport {
            trigger: trigger.to_string(),
            ..Default::default()
        };
        // The earliest start of a transcript this run could not finish.
        let mut hold: Option<DateTime<Utc>> = None;
        let mut cursor: Option<String> = None;
        'pages: loop {
            let page = self
                .api(|| {
                    self.client.transcript_list(
                        &after_text,
                        cursor.as_deref(),
                        self.settings.page_size,
                    )
                })
                .await?;
            report.pages += 1;
            for t in page.transcripts {
                if shutdown.is_cancelled() {
                    report.interrupted = true;
                    break 'pages;
                }
                let start = parse_time(t.start.as_deref());
                if let (Some(r), Some(s)) = (range, start)
                    && r.until.is_some_and(|u| s >= u)
                {
                    continue;
                }
                report.listed += 1;
                let unfinished = |hold: &mut Option<DateTime<Utc>>| {
                    if let Some(s) = start {
                        *hold = Some(hold.map_or(s, |h| h.min(s)));
                    }
                };
                if t.end.as_deref().is_none_or(str::is_empty) {
                    report.skipped_live += 1;
                    self.metrics.transcripts.inc(&["skipped_live"]);
                    unfinished(&mut hold);
                    continue;
                }
                match self.process(&t.id, dry_run).await {
                    Ok(Outcome::Posted { .. }) => {
                        report.processed += 1;
                        self.metrics.transcripts.inc(&["processed"]);
                    }
                    Ok(Outcome::Planned(msgs)) => {
                        report.processed += 1;
                        report
                            .planned
                            .extend(msgs.into_iter().map(|(r, c, x)| (t.id.clone(), r, c, x)));
                    }
                    Ok(Outcome::Already) => report.already += 1,
                    Ok(Outcome::Live) => {
                        report.skipped_live += 1;
                        self.metrics.transcripts.inc(&["skipped_live"]);
                        unfinished(&mut hold);
                    }
                    Err(e) => {
                        report.failed += 1;
                        self.metrics.transcripts.inc(&["failed"]);
                        unfinished(&mut hold);
                        tracing::warn!(transcript = %t.id, error = %e, "transcript not processed; retried on the next run");
                        self.status
                            .update(|s| s.last_error = Some(format!("transcript {}: {e}", t.id)));
                    }
                }
            }
            match page.next_cursor {
                Some(c) if !c.is_empty() => cursor = Some(c),
                _ => break,
            }
        }
        if range.is_none() && !dry_run && !report.interrupted {
            let checkpoint = hold.unwrap_or(started).to_rfc3339();
            self.store
                .set_transcript_state(&[
                    ("checkpoint", checkpoint.clone()),
                    ("last_run_at", started.timestamp_millis().to_string()),
                    (
                        "last_run_ok",
                        if report.failed == 0 { "1" } else { "0" }.to_string(),
                    ),
                ])
                .await?;
            report.checkpoint = Some(checkpoint);
        }
        Ok(report)
    }

    /// Processes the transcripts announced by webhook; returns how many are done.
    pub async fn drain_queue(&self, shutdown: &CancellationToken) -> usize {
        let queued = match self.store.queued_transcripts().await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the transcript queue");
                return 0;
            }
        };
        let mut done = 0;
        for q in queued {
            if shutdown.is_cancelled() {
                break;
            }
            let result = self.process(&q.id, false).await;
            let finished = match &result {
                Ok(Outcome::Posted { .. }) => {
                    self.metrics.transcripts.inc(&["processed"]);
                    true
                }
                Ok(Outcome::Already) => true,
                // A transcript Roam does not have (any 4xx) will not appear later.
                Err(SweepError::Roam(RoamError::Rejected { .. })) => true,
                _ => q.attempts + 1 >= MAX_QUEUE_ATTEMPTS,
            };
            match &result {
                Ok(o) => {
                    tracing::info!(transcript = %q.id, outcome = ?o, "queued transcript handled")
                }
                Err(e) => tracing::warn!(transcript = %q.id, attempt = q.attempts + 1, error = %e,
                    "queued transcript not processed"),
            }
            let write = if finished {
                done += 1;
                self.store.dequeue_transcript(&q.id).await
            } else {
                let why = match &result {
                    Ok(Outcome::Live) => "meeting still live".to_string(),
                    Ok(_) => String::new(),
                    Err(e) => e.to_string(),
                };
                self.store.transcript_failed(&q.id, &why).await
            };
            if let Err(e) = write {
                tracing::warn!(transcript = %q.id, error = %e, "cannot update the transcript queue");
            }
        }
        done
    }

    /// Drains the queue when woken (a webhook) and every minute, until shutdown.
    pub async fn run_queue(
        self: Arc<Self>,
        leader: Leader,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) {
        // The replica a webhook reached drains at once; the periodic retry of what is
        // left runs on the leading replica only (all of them would fetch the same ids).
        let mut woken = false;
        loop {
            if woken || leader.holds().await {
                self.drain_queue(&shutdown).await;
            }
            tokio::select! {
                _ = wake.notified() => woken = true,
                _ = tokio::time::sleep(QUEUE_RETRY) => woken = false,
                _ = shutdown.cancelled() => break,
            }
        }
    }

    /// Fetches one transcript and commits its event (once, whatever triggered it).
    pub async fn process(&self, id: &str, dry_run: bool) -> Result<Outcome, SweepError> {
        let pipeline = self.pipeline.load_full();
        let source_name = &self.settings.source;
        let Some(source) = pipeline.sources.get(source_name) else {
            return Err(SweepError::NoSource(source_name.clone()));
        };
        if !dry_run && self.store.has_event(source_name, &delivery_id(id)).await? {
            return Ok(Outcome::Already);
        }
        let info = self.api(|| self.client.transcript_info(id)).await?;
        if info
            .get("end")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Ok(Outcome::Live);
        }
        let mut event = transcript_event(info, &self.settings.internal_domains);
        if pipeline.router.routes().iter().any(|r| r.dm_assignees) {
            self.resolve_assignees(&mut event.payload).await;
        }
        if dry_run {
            let planned = pipeline.plan(source, event, crate::ingest::Rendering::Now);
            return Ok(Outcome::Planned(
                planned
                    .event
                    .messages
                    .iter()
                    .map(|m| (m.route.clone(), m.chat.clone(), readable(&m.request)))
                    .collect(),
            ));
        }
        let outcome = self
            .ingest
            .accept(&pipeline, source, vec![event])
            .await
            .map_err(|e| SweepError::Commit(e.to_string()))?;
        Ok(match outcome.events.first() {
            Some(e) if e.new => Outcome::Posted {
                messages: e.messages,
            },
            _ => Outcome::Already,
        })
    }

    /// Sets each action item's `assignee_user` (a Roam user id) for direct messages:
    /// the assignee if it is one, else the user with the assignee's email (`user.lookup`,
    /// cached), else the participant the item names.
    async fn resolve_assignees(&self, payload: &mut Value) {
        let participants: Vec<Value> = payload
            .get("participants")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(items) = payload
            .get_mut("action_items")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        for it in items {
            let assignee = it
                .get("assignee")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let user = match known_user(&assignee, &participants) {
                Some(u) => Some(u),
                None if assignee.contains('@') => self.lookup(&assignee).await,
                None => None,
            };
            if let (Some(u), Some(o)) = (user, it.as_object_mut()) {
                o.insert("assignee_user".into(), Value::String(u));
            }
        }
    }

    /// The Roam user with this email, through the daemon's directory (cached durably).
    async fn lookup(&self, email: &str) -> Option<String> {
        let directory = self.pipeline.load().directory.clone();
        let lookup = Lookup {
            client: &self.client,
            pacer: &self.pacer,
            store: Some(&self.store),
        };
        match user_id(&directory, lookup, email).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "user.lookup failed; the assignee gets no direct message this time");
                None
            }
        }
    }

    /// One Roam API call through the shared pacer (a 429 pauses every call).
    async fn api<T, F, Fut>(&self, call: F) -> Result<T, RoamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RoamError>>,
    {
        self.pacer.call("transcript processing", call).await
    }
}
