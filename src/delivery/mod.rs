//! The delivery worker: drains the outbox into Roam.
//!
//! One loop, like mini-redis' purge task: send what is due, then sleep until the next
//! message is due or a commit wakes it. Per chat, messages go out oldest first and a
//! message waiting for a retry holds back the later ones of the same chat, so a chat
//! never sees them out of order; different chats' messages are sent side by side (up to
//! `IN_FLIGHT` at once, within the pacer's rate). Outcomes:
//! - 2xx: delivered.
//! - 429: all sending pauses for `Retry-After` (or a default); the message waits without
//!   using up a retry.
//! - 401 / wrong kind of key: all sending pauses with backoff; nothing is dead-lettered
//!   for a key problem, since every message would be.
//! - 5xx, 408, network errors: retried with exponential backoff and jitter until
//!   `give_up_after`, then dead-lettered with the last reason.
//! - Other 4xx: dead-lettered at once with Roam's reason.
//!
//! A message is marked `sending` before the request; if the process dies before the
//! outcome is recorded it is sent again at start-up and logged as a possible duplicate.
//!
//! A message rendered when it is sent (`compose::RenderLater`) is rendered here, with the
//! templates in force, just before it is marked `sending`; that same update stores its
//! body, so a retry or a re-send after a restart sends exactly that body.

pub mod address;
pub mod retry;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::directory::{Directory, Lookup};
use crate::metrics::Metrics;
use crate::pacer::Pacer;
use crate::render::CurrentTemplates;
use crate::roam::{RoamClient, RoamError};
use crate::storage::{
    EntityMessage, MessageOp, OutboxMessage, RenderedBody, Store, StoreError, now_ms,
};
use address::{Address, address};
pub use retry::RetryPolicy;

/// Messages looked at per step (at most one per chat).
const BATCH: i64 = 32;
/// Messages sent at once (each to a different chat), within the pacer's rate.
const IN_FLIGHT: usize = 16;
/// Longest pause while the key is refused, between checks.
const MAX_AUTH_WAIT: Duration = Duration::from_secs(300);
/// Longest idle sleep; the worker also wakes on every commit.
const IDLE_MAX: Duration = Duration::from_secs(60);
/// Longest idle sleep with a shared store, which other replicas write to.
pub const SHARED_POLL: Duration = Duration::from_secs(1);

/// Where messages go: Roam, or the log in dry-run mode.
#[derive(Debug, Clone)]
pub enum Outlet {
    Roam(RoamClient),
    DryRun,
}

/// The last delivery error, shown by `/readyz` (the counts are in `Metrics`).
#[derive(Debug, Default)]
pub struct DeliveryStatus {
    last_error: Mutex<Option<String>>,
}

impl DeliveryStatus {
    fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What became of one claimed message in a step.
enum Done {
    /// Delivered, rescheduled or dead-lettered.
    Handled,
    /// Not started: a pause began, or another replica took it.
    Skipped,
    /// Shutdown came while it waited for the pacer.
    Stopped,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Handled this many messages (delivered, rescheduled or dead-lettered).
    Worked(usize),
    /// Nothing due; the next head-of-chat message is due at this unix-ms time.
    Idle { next_due_ms: Option<i64> },
    /// Shutdown was requested.
    Stopped,
}

pub struct DeliveryWorker {
    store: Store,
    outlet: Outlet,
    pacer: Arc<Pacer>,
    retry: RetryPolicy,
    wake: Arc<Notify>,
    status: Arc<DeliveryStatus>,
    metrics: Arc<Metrics>,
    auth_failures: AtomicU64,
    /// Resolves chats and mentions given by name or email (see `address`).
    directory: Directory,
    /// Renders messages rendered when sent; None: such a message is dead-lettered.
    templates: Option<CurrentTemplates>,
}

impl DeliveryWorker {
    pub fn new(
        store: Store,
        outlet: Outlet,
        pacer: Arc<Pacer>,
        retry: RetryPolicy,
        wake: Arc<Notify>,
        status: Arc<DeliveryStatus>,
        metrics: Arc<Metrics>,
    ) -> DeliveryWorker {
        DeliveryWorker {
            store,
            outlet,
            pacer,
            retry,
            wake,
            status,
            metrics,
            auth_failures: AtomicU64::new(0),
            directory: Directory::default(),
            templates: None,
        }
    }

    /// Renders messages that are rendered when sent with these (the daemon's, swapped by
    /// a reload).
    pub fn with_templates(mut self, templates: CurrentTemplates) -> DeliveryWorker {
        self.templates = Some(templates);
        self
    }

    /// Resolves names and emails with this directory (the daemon's).
    pub fn with_directory(mut self, directory: Directory) -> DeliveryWorker {
        self.directory = directory;
        self
    }

    /// Runs until `shutdown`; finishes the send in progress, starts no new one.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.step(&shutdown).await {
                Ok(Step::Worked(_)) => {}
                Ok(Step::Stopped) => break,
                Ok(Step::Idle { next_due_ms }) => {
                    let mut wait = next_due_ms
                        .map(|t| Duration::from_millis((t - now_ms()).max(0) as u64))
                        .unwrap_or(IDLE_MAX)
                        .min(IDLE_MAX);
                    if self.store.is_shared() {
                        // Other replicas' commits do not wake this worker.
                        wait = wait.min(SHARED_POLL);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.wake.notified() => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "delivery worker cannot read the outbox; retrying in 1s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
        tracing::info!("delivery worker stopped");
    }

    /// One pass over the due messages. Public so tests can drive delivery step by step.
    pub async fn step(&self, shutdown: &CancellationToken) -> Result<Step, StoreError> {
        let due = self.store.claim_due(now_ms(), BATCH).await?;
        if due.is_empty() {
            return Ok(Step::Idle {
                next_due_ms: self.store.next_due_at().await?,
            });
        }
        let claimed: Vec<i64> = due.iter().map(|m| m.id).collect();
        let result = self.send_claimed(due, shutdown).await;
        // Claims not reached (shutdown, a 429 that stopped the batch, an error) go back
        // now, not when their lease runs out. Messages already sent are not touched.
        if let Err(e) = self.store.release_claims(&claimed).await {
            tracing::warn!(error = %e, "could not release claims; they return when their lease runs out");
        }
        result
    }

    /// Sends the claimed messages, several at once: each is the oldest unsent message of
    /// its chat, so chats proceed side by side while each chat's order holds (its next
    /// message is claimed only after this one is recorded). A pause (429) stops the
    /// messages not yet started.
    async fn send_claimed(
        &self,
        due: Vec<OutboxMessage>,
        shutdown: &CancellationToken,
    ) -> Result<Step, StoreError> {
        let stop = AtomicBool::new(false);
        let done: Vec<Result<Done, StoreError>> = futures_util::stream::iter(due)
            .map(|m| self.deliver(m, &stop, shutdown))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut handled = 0;
        let mut stopped = false;
        for d in done {
            match d? {
                Done::Handled => handled += 1,
                Done::Skipped => {}
                Done::Stopped => stopped = true,
            }
        }
        Ok(if stopped && handled == 0 {
            Step::Stopped
        } else {
            Step::Worked(handled)
        })
    }

    /// One claimed message: paced, addressed, sent, recorded.
    async fn deliver(
        &self,
        m: OutboxMessage,
        stop: &AtomicBool,
        shutdown: &CancellationToken,
    ) -> Result<Done, StoreError> {
        if stop.load(Ordering::Relaxed) || shutdown.is_cancelled() {
            return Ok(Done::Skipped);
        }
        tokio::select! {
            _ = self.pacer.acquire() => {}
            _ = shutdown.cancelled() => return Ok(Done::Stopped),
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(Done::Skipped);
        }
        // Every log line about this message carries its event's source, delivery id
        // and route (as span fields in JSON logs).
        let span = tracing::info_span!("message", message_id = m.id, source = %m.source,
            delivery_id = %m.delivery_id, route = %m.route, chat = %m.chat);
        async {
            let mut m = m;
            let rendered = match m.render.take() {
                None => None,
                Some(render) => match self.render(&m, &render) {
                    Ok(r) => Some(r),
                    Err(reason) => {
                        tracing::error!(message_id = m.id, route = %m.route, "dead letter: {reason}");
                        self.store.mark_dead(m.id, &reason).await?;
                        self.metrics.messages.inc(&[&m.route, "dead"]);
                        return Ok(Done::Handled);
                    }
                },
            };
            let body = rendered.as_ref().map(|(request, error)| RenderedBody {
                request,
                render_error: error.as_deref(),
            });
            if !self.store.mark_sending(m.id, body).await? {
                // Our claim ran out while we waited and another replica took it.
                tracing::info!("claim expired and was taken over by another replica; skipping");
                return Ok(Done::Skipped);
            }
            if let Some((request, error)) = rendered {
                if let Some(e) = &error {
                    self.metrics.template_errors.inc(&[&m.route]);
                    tracing::error!(message_id = m.id, route = %m.route, error = %e,
                        "template failed; the message is sent in its plain fallback form (or, for a failing optional card part, without that part)");
                }
                m.request = request;
            }
            if m.maybe_duplicate {
                tracing::warn!(message_id = m.id, chat = %m.chat, route = %m.route,
                    "re-sending a message that was in flight when its sender stopped; Roam may show it twice");
            }
            let lookup = match &self.outlet {
                Outlet::Roam(client) => Some(Lookup {
                    client,
                    pacer: &self.pacer,
                    store: Some(&self.store),
                }),
                Outlet::DryRun => None,
            };
            let m = match address(m.clone(), &self.directory, lookup).await {
                Address::Ready(m) => m,
                Address::Dead(reason) => {
                    tracing::error!(message_id = m.id, route = %m.route, "dead letter: {reason}");
                    self.store.mark_dead(m.id, &reason).await?;
                    self.metrics.messages.inc(&[&m.route, "dead"]);
                    return Ok(Done::Handled);
                }
                Address::Later(e) => {
                    if self.record(&m, Err(e)).await? {
                        stop.store(true, Ordering::Relaxed);
                    }
                    return Ok(Done::Handled);
                }
            };
            // An upsert whose entity already has a message edits that message.
            let target = match (m.op, m.entity_key.as_deref()) {
                (MessageOp::Upsert, Some(key)) => self.store.entity_message(key).await?,
                _ => None,
            };
            let outcome = self.send(&m, target).await;
            if self.record(&m, outcome).await? {
                stop.store(true, Ordering::Relaxed);
            }
            Ok(Done::Handled)
        }
        .instrument(span)
        .await
    }

    /// The body of a message rendered when sent, and its template's failure. Err: it
    /// cannot be rendered (the reason it is dead-lettered).
    fn render(&self, m: &OutboxMessage, render: &str) -> Result<(String, Option<String>), String> {
        let Some(templates) = &self.templates else {
            return Err("no templates to render the message with".into());
        };
        crate::compose::render_later(&templates.load(), render, &m.route, &m.chat)
            .map_err(|e| format!("what to render cannot be read: {e}"))
    }

    /// Sends one message; returns the timestamp of a message it posted for an entity.
    async fn send(&self, m: &OutboxMessage, target: Option<i64>) -> Result<Option<i64>, RoamError> {
        let client = match &self.outlet {
            Outlet::Roam(client) => client,
            Outlet::DryRun => {
                let text = crate::roam::blocks::readable(&m.request);
                let what = if target.is_some() { "update" } else { "post" };
                tracing::info!(message_id = m.id, chat = %m.chat, route = %m.route, "dry-run: would {what} in Roam:\n{text}");
                return Ok(None);
            }
        };
        if let Some(ts) = target {
            let (update, reply) = update_requests(&m.request, ts);
            match client.chat_update(update).await {
                Ok(()) => {
                    // With thread = true the change is also a reply, so people see it.
                    if let Some(reply) = reply {
                        client.chat_post(reply).await?;
                    }
                    return Ok(None);
                }
                Err(e) if e.is_message_not_found() => {
                    tracing::warn!(message_id = m.id, chat = %m.chat, route = %m.route,
                        "the message to update is gone from Roam; posting a new one");
                }
                Err(e) => return Err(e),
            }
        }
        let ts = client.chat_post(m.request.clone()).await?;
        Ok(if m.op == MessageOp::Upsert { ts } else { None })
    }

    /// Records the outcome; returns true when the rest of the batch must wait (a pause).
    async fn record(
        &self,
        m: &OutboxMessage,
        outcome: Result<Option<i64>, RoamError>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        match outcome {
            Ok(posted) => {
                let posted = match (posted, m.entity_key.as_deref()) {
                    (Some(timestamp), Some(entity_key)) => Some(EntityMessage {
                        entity_key,
                        chat: &m.chat,
                        timestamp,
                    }),
                    _ => None,
                };
                self.store.mark_delivered(m.id, posted).await?;
                self.metrics.messages.inc(&[&m.route, "sent"]);
                self.metrics
                    .delivery_seconds
                    .observe(Duration::from_millis((now - m.created_at).max(0) as u64));
                self.auth_failures.store(0, Ordering::Relaxed);
                self.status.set_error(None);
                tracing::info!(message_id = m.id, chat = %m.chat, route = %m.route, attempt = m.attempts + 1, "delivered");
                Ok(false)
            }
            Err(e @ RoamError::RateLimited { .. }) => {
                let wait = e.rate_limit_wait().unwrap_or_default();
                self.pacer.pause_for(wait);
                self.metrics.rate_limited.inc();
                let reason = format!(
                    "429 from Roam; all sending paused for {:.1}s",
                    wait.as_secs_f64()
                );
                tracing::warn!(message_id = m.id, chat = %m.chat, "{reason}");
                self.store
                    .retry_later(m.id, now + wait.as_millis() as i64, &reason, false)
                    .await?;
                self.status.set_error(Some(reason));
                Ok(true)
            }
            Err(e @ RoamError::Unauthorized { .. }) => {
                let n = self.auth_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let wait = self.retry.delay(n as u32).min(MAX_AUTH_WAIT);
                self.pacer.pause_for(wait);
                let reason = format!(
                    "{e}; fix roam.api_key (an organization API key is needed). Sending paused for {:.0}s",
                    wait.as_secs_f64()
                );
                tracing::error!(message_id = m.id, "{reason}");
                self.store
                    .retry_later(m.id, now + wait.as_millis() as i64, &e.to_string(), false)
                    .await?;
                self.status.set_error(Some(reason));
                Ok(true)
            }
            Err(e) if e.is_transient() => {
                let failed = (m.attempts + 1) as u32;
                let delay = self.retry.delay(failed);
                let next = now + delay.as_millis() as i64;
                let deadline = m.created_at + self.retry.give_up_after.as_millis() as i64;
                if next > deadline {
                    let reason = format!("gave up after {failed} attempts: {e}");
                    tracing::error!(message_id = m.id, chat = %m.chat, route = %m.route, "dead letter: {reason}");
                    self.store.mark_dead(m.id, &reason).await?;
                    self.metrics.messages.inc(&[&m.route, "dead"]);
                } else {
                    tracing::warn!(message_id = m.id, chat = %m.chat, attempt = failed,
                        retry_in_s = delay.as_secs_f64(), error = %e, "delivery failed; will retry");
                    self.store
                        .retry_later(m.id, next, &e.to_string(), true)
                        .await?;
                    self.metrics.messages.inc(&[&m.route, "retried"]);
                }
                self.status.set_error(Some(e.to_string()));
                Ok(false)
            }
            Err(e) => {
                tracing::error!(message_id = m.id, chat = %m.chat, route = %m.route, error = %e, "dead letter: Roam refused the message");
                self.store.mark_dead(m.id, &e.to_string()).await?;
                self.metrics.messages.inc(&[&m.route, "dead"]);
                Ok(false)
            }
        }
    }
}

/// From an upsert's chat.post body: the chat.update body that edits message `ts`, and,
/// when the body has a `threadKey`, the reply to post in the entity's thread.
fn update_requests(post_body: &str, ts: i64) -> (String, Option<String>) {
    let v: serde_json::Value = serde_json::from_str(post_body).unwrap_or_default();
    let mut update = serde_json::json!({ "chat": v.get("chat"), "timestamp": ts });
    // The new content replaces the old whole: a card stays a card (its new colour too).
    match v.get("blocks") {
        Some(blocks) => {
            update["blocks"] = blocks.clone();
            if let Some(c) = v.get("color") {
                update["color"] = c.clone();
            }
        }
        None => {
            update["text"] = v.get("text").cloned().unwrap_or_default();
            update["markdown"] = v
                .get("markdown")
                .cloned()
                .unwrap_or(serde_json::json!(true));
        }
    }
    let reply = v.get("threadKey").map(|_| {
        let mut r = v.clone();
        if let Some(o) = r.as_object_mut() {
            o.remove("sync");
        }
        r.to_string()
    });
    (update.to_string(), reply)
}
