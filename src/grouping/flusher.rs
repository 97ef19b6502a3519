//! The flusher: turns due groups into outbox messages.
//!
//! One loop, like the delivery worker: handle what is due, then sleep until the next
//! group is due or a commit with held items wakes it. Each group's message and the
//! consumption of its items are one transaction, so a restart neither loses a pending
//! group nor sends it twice. With several replicas only the leader flushes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{GroupKey, GroupSpec, Item, Line, group_context};
use crate::compose::{Addressing, outbox_messages};
use crate::delivery::SHARED_POLL;
use crate::metrics::Metrics;
use crate::render::{Content, CurrentTemplates};
use crate::storage::leader::Leader;
use crate::storage::{DueGroup, GroupFlush, Store, StoreError, StoredItem, now_ms};
use crate::text::escape_markdown;

/// Groups looked at per step.
const BATCH: i64 = 256;
/// Longest idle sleep; commits with held items also wake the flusher.
const IDLE_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Sent (or postponed) this many groups.
    Worked(usize),
    Idle {
        next_due_ms: Option<i64>,
    },
}

pub struct Flusher {
    store: Store,
    templates: CurrentTemplates,
    /// Wakes the delivery worker after queuing messages.
    delivery: Arc<Notify>,
    /// Woken by commits that held items back.
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// Only the leading replica flushes (several would race for the same groups).
    leader: Leader,
}

impl Flusher {
    pub fn new(
        store: Store,
        templates: CurrentTemplates,
        delivery: Arc<Notify>,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Flusher {
        Flusher {
            leader: Leader::new(store.clone()),
            store,
            templates,
            delivery,
            wake,
            metrics,
        }
    }

    /// Shares the application's leadership (one lease renewal for all background work).
    pub fn with_leader(mut self, leader: Leader) -> Flusher {
        self.leader = leader;
        self
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if !self.leader.holds().await {
                tokio::select! {
                    _ = tokio::time::sleep(SHARED_POLL) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
            let wait = match self.step(now_ms()).await {
                Ok(Step::Worked(_)) => continue,
                Ok(Step::Idle { next_due_ms }) => next_due_ms
                    .map(|t| Duration::from_millis((t - now_ms()).max(0) as u64))
                    .unwrap_or(IDLE_MAX)
                    .min(IDLE_MAX),
                Err(e) => {
                    tracing::error!(error = %e, "cannot send due groups; retrying in 1s");
                    Duration::from_secs(1)
                }
            };
            // Other replicas' commits do not wake this one.
            let wait = if self.store.is_shared() {
                wait.min(SHARED_POLL)
            } else {
                wait
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::info!("group flusher stopped");
    }

    /// Sends every group due at `now`. Public so tests can drive it step by step.
    pub async fn step(&self, now: i64) -> Result<Step, StoreError> {
        let due = self.store.due_groups(now, BATCH).await?;
        if due.is_empty() {
            return Ok(Step::Idle {
                next_due_ms: self.store.next_group_due().await?,
            });
        }
        let n = due.len();
        let mut by_route: Vec<(String, Vec<(DueGroup, GroupSpec)>)> = Vec::new();
        for g in due {
            let spec = match serde_json::from_str::<GroupSpec>(&g.spec) {
                Ok(s) => s,
                Err(e) => {
                    // Written by us; only a hand-edited database gets here. Park the group
                    // (its items stay) rather than retrying it in a tight loop.
                    tracing::error!(route = %g.route, group = g.id, error = %e,
                        "unreadable group settings; the group is parked with its events, not sent");
                    self.store.park_group(g.id).await?;
                    continue;
                }
            };
            match by_route.last_mut() {
                Some((r, list)) if *r == g.route => list.push((g, spec)),
                _ => by_route.push((g.route.clone(), vec![(g, spec)])),
            }
        }
        for (route, groups) in by_route {
            self.flush_route(&route, groups, now).await?;
        }
        self.delivery.notify_one();
        Ok(Step::Worked(n))
    }

    async fn flush_route(
        &self,
        route: &str,
        groups: Vec<(DueGroup, GroupSpec)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let (regular, special): (Vec<_>, Vec<_>) = groups
            .into_iter()
            .partition(|(_, s)| !s.digest && s.muted.is_none());
        // max_messages: if sending each due group would overrun the window's budget,
        // they become one digest (now if a message is left, else when the window ends).
        if let Some((_, spec)) = regular.first()
            && let Some(max) = spec.max_messages
        {
            let (start, sent) = self.window(route, spec, now).await?;
            let left = i64::from(max) - sent;
            if regular.len() as i64 > left {
                let at = if left > 0 {
                    now
                } else {
                    start.saturating_add(spec.max_window_ms)
                };
                let mut digest = spec.clone();
                digest.digest = true;
                digest.labels.clear();
                digest.thread = false;
                digest.update = false;
                let ids: Vec<i64> = regular.iter().map(|(g, _)| g.id).collect();
                let json = serde_json::to_string(&digest).unwrap_or_default();
                self.store
                    .merge_groups(route, &GroupKey::Overflow.encode(), &json, &ids, at)
                    .await?;
                tracing::info!(
                    route,
                    groups = ids.len(),
                    max_messages = max,
                    digest_at = at,
                    "over max_messages: the due groups go out as one digest"
                );
                for (g, s) in special {
                    self.flush_group(route, &g, &s, now).await?;
                }
                return Ok(());
            }
        }
        for (g, s) in regular.iter().chain(special.iter()) {
            self.flush_group(route, g, s, now).await?;
        }
        Ok(())
    }

    /// The route's current `max_messages` window: (start, sent).
    async fn window(
        &self,
        route: &str,
        spec: &GroupSpec,
        now: i64,
    ) -> Result<(i64, i64), StoreError> {
        Ok(match self.store.route_window(route).await? {
            Some((start, sent)) if now < start.saturating_add(spec.max_window_ms) => (start, sent),
            _ => (now, 0),
        })
    }

    async fn flush_group(
        &self,
        route: &str,
        g: &DueGroup,
        spec: &GroupSpec,
        now: i64,
    ) -> Result<(), StoreError> {
        let items = self.store.group_items(&[g.id]).await?;
        let upto = items.iter().map(|i| i.id).max().unwrap_or(0);
        let recent = match spec.repeat_ms {
            Some(ms) if !spec.digest && spec.muted.is_none() => {
                self.store.sent_fingerprints(route, now - ms).await?
            }
            _ => Default::default(),
        };
        let (lines, fingerprints, suppressed, last_event) = collapse(&items, &recent);
        let mut flush = GroupFlush {
            route: route.to_string(),
            group_ids: vec![g.id],
            upto_item_id: upto,
            items: items.len() as u64,
            messages: Vec::new(),
            fingerprints,
            window: None,
            interval_ms: spec.interval_ms,
        };
        if suppressed > 0 {
            tracing::info!(route, group = %g.key.escape_debug(), suppressed, "repeats within repeat_interval not re-sent");
        }
        if let (Some(event_id), false) = (last_event, lines.is_empty()) {
            let content = self.group_content(route, spec, &lines, suppressed);
            let entity = format!("group:{}", g.key);
            let plain = spec.digest || spec.muted.is_some() || GroupKey::is_single(&g.key);
            let addressing = Addressing {
                route,
                to: &spec.to,
                mentions: &spec.mentions,
                split_long: spec.split_long,
                thread: spec.thread && !plain,
                update: spec.update && !plain,
                entity: (!plain).then_some(entity.as_str()),
                split_seed: &format!("{route}\u{0}{}\u{0}{now}", g.key),
            };
            // A lone item that was its own event keeps its entity for thread/update.
            let lone_entity;
            let addressing = if plain && lines.len() == 1 && !spec.digest && spec.muted.is_none() {
                lone_entity = lines[0].item.entity.clone();
                Addressing {
                    thread: spec.thread && lone_entity.is_some(),
                    update: spec.update && lone_entity.is_some(),
                    entity: lone_entity.as_deref(),
                    ..addressing
                }
            } else {
                addressing
            };
            for m in outbox_messages(&addressing, &content, None) {
                flush.messages.push((event_id, m));
            }
            if spec.max_messages.is_some() {
                let (start, sent) = self.window(route, spec, now).await?;
                flush.window = Some((start, sent + 1));
            }
        }
        if !self.store.apply_flush(&flush).await? {
            // Another replica's flusher sent these items first (only possible around a
            // change of leader); nothing was written.
            tracing::info!(route, group = %g.key.escape_debug(), "group already sent by another replica");
            return Ok(());
        }
        self.metrics
            .messages
            .add(&[route, "queued"], flush.messages.len() as u64);
        Ok(())
    }

    /// One item alone is sent as its own message; several use the group template.
    fn group_content(
        &self,
        route: &str,
        spec: &GroupSpec,
        lines: &[Line],
        suppressed: usize,
    ) -> Content {
        if lines.len() == 1 && lines[0].repeats == 1 && !spec.digest && spec.muted.is_none() {
            let item = &lines[0].item;
            return match &item.card {
                Some(card) => Content::Card(card.clone()),
                None => Content::Text(item.text.clone()),
            };
        }
        let ctx = group_context(route, spec, lines, suppressed);
        let templates = self.templates.load();
        let name = spec.template.as_deref().unwrap_or("group");
        match templates.render(name, spec.format, &ctx) {
            Ok(content) => content,
            Err(e) => {
                tracing::error!(route, error = %e, "group template failed; sending the plain list");
                let mut t = format!("**{} events on {}**", lines.len(), escape_markdown(route));
                for l in lines.iter().take(spec.shown) {
                    t.push_str("\n- ");
                    t.push_str(&l.item.title);
                }
                Content::Text(t)
            }
        }
    }
}

/// Drops items sent recently, merges identical ones: (lines, their fingerprints, how
/// many were dropped, the newest event id).
fn collapse(
    items: &[StoredItem],
    recent: &std::collections::HashSet<String>,
) -> (Vec<Line>, Vec<String>, usize, Option<i64>) {
    let mut lines: Vec<Line> = Vec::new();
    let mut fps: Vec<String> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut suppressed = 0;
    let mut last_event = None;
    for it in items {
        last_event = Some(it.event_id);
        if recent.contains(&it.fingerprint) {
            suppressed += 1;
            continue;
        }
        if let Some(&i) = index.get(it.fingerprint.as_str()) {
            lines[i].repeats += 1;
            continue;
        }
        let Ok(item) = serde_json::from_str::<Item>(&it.item) else {
            continue;
        };
        index.insert(&it.fingerprint, lines.len());
        fps.push(it.fingerprint.clone());
        lines.push(Line { item, repeats: 1 });
    }
    (lines, fps, suppressed, last_event)
}
