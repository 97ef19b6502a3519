//! The request path after verification: route, render, and prepare the rows to commit.
//!
//! Everything here is pure and in memory; `http::hooks` calls it between parsing and the
//! commit, and `check` / `render` call it offline.

use std::collections::HashMap;

use serde_json::{Value, json};

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, ConfigError};
use crate::grouping::{self, GroupSpec, Hold, Item};
use crate::inbound::{self, Event, Source};
use crate::render::{
    EventMeta, ROAM_MAX_TEXT_BYTES, Templates, event_context, fit_message, split_message,
};
use crate::routing::quiet::CompiledSilence;
use crate::routing::{Route, Router};
use crate::storage::{HeldItem, KEY_SEP, MessageOp, NewEvent, NewMessage, now_ms};

pub struct Pipeline {
    pub sources: HashMap<String, Source>,
    pub templates: Templates,
    pub router: Router,
    /// Silences added with `roam-notify silence add`, refreshed from storage by the
    /// daemon; shared by every pipeline a reload builds.
    pub stored_silences: Arc<ArcSwap<Vec<CompiledSilence>>>,
    /// Proxies whose `X-Forwarded-For` names the client (`server.trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How transcripts become events (for `routes test` and `[[tests]]` on them).
    pub transcript_settings: crate::transcripts::Settings,
}

/// Why a matched route sends nothing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quiet {
    Silenced {
        route: String,
        silence: String,
        comment: String,
    },
    Muted {
        route: String,
        window: String,
        until_ms: i64,
        summary: bool,
    },
}

impl std::fmt::Display for Quiet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quiet::Silenced {
                route,
                silence,
                comment,
            } => {
                write!(f, "route {route} silenced by {silence} ({comment})")
            }
            Quiet::Muted {
                route,
                window,
                until_ms,
                summary,
            } => {
                let until = chrono::DateTime::from_timestamp_millis(*until_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                write!(f, "route {route} muted by window {window} until {until}")?;
                if *summary {
                    f.write_str("; summarised then")
                } else {
                    f.write_str("; not sent")
                }
            }
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("sources", &self.sources.len())
            .field("routes", &self.router.routes().len())
            .finish()
    }
}

/// An event ready to commit, with the template failures met while rendering it.
#[derive(Debug)]
pub struct Planned {
    pub event: NewEvent,
    pub render_errors: Vec<String>,
    /// Matched routes that send nothing now (silenced or muted).
    pub quiet: Vec<Quiet>,
}

impl Pipeline {
    /// Compiles sources, templates and routes; every problem names its file and key.
    pub fn compile(cfg: &Config) -> Result<Pipeline, ConfigError> {
        let sources = inbound::build_sources(cfg)?;
        let templates = Templates::load(cfg)?;
        let router = Router::compile(cfg, &sources, &templates)?;
        if cfg.transcripts.enabled {
            crate::transcripts::schedule::Schedule::parse(
                &cfg.transcripts.schedule,
                &cfg.transcripts.timezone,
            )
            .map_err(|(k, p)| cfg.error(&format!("transcripts.{k}"), p))?;
        }
        let trusted_proxies = inbound::parse_cidrs(&cfg.server.trusted_proxies)
            .map_err(|(n, e)| cfg.error(&format!("server.trusted_proxies[{n}]"), e))?;
        Ok(Pipeline {
            sources: sources.into_iter().map(|s| (s.name.clone(), s)).collect(),
            templates,
            router,
            stored_silences: Arc::default(),
            trusted_proxies,
            transcript_settings: crate::transcripts::Settings::from_config(&cfg.transcripts),
        })
    }

    /// Routes and renders one event into the rows to commit.
    pub fn plan(&self, source: &Source, event: Event) -> Planned {
        if tracing::enabled!(tracing::Level::DEBUG) {
            for v in self
                .router
                .explain(&source.name, &event.name, &event.payload)
            {
                tracing::debug!(delivery_id = %event.delivery_id, event = %event.name, route = %v.route,
                    matched = v.failed.is_none(), why_not = v.failed.as_deref().unwrap_or(""), "routing");
            }
        }
        let routes = self
            .router
            .matching(&source.name, &event.name, &event.payload);
        let Event {
            name,
            delivery_id,
            entity,
            payload,
        } = event;
        let meta = EventMeta {
            name: &name,
            source: &source.name,
            kind: source.kind,
            delivery_id: &delivery_id,
            entity: entity.as_deref(),
        };
        let mut messages = Vec::new();
        let mut held = Vec::new();
        let mut render_errors = Vec::new();
        let mut quiet = Vec::new();
        if !routes.is_empty() {
            // Built once per event, moving the payload in: no copy per route.
            let data = event_context(&meta, payload);
            let now = now_ms();
            for route in &routes {
                if let Some(q) = self.silenced(now, &meta, route, data.data()) {
                    quiet.push(q);
                    continue;
                }
                let muted = route.muted_at(now);
                if let Some((window, until_ms)) = muted {
                    quiet.push(Quiet::Muted {
                        route: route.name.clone(),
                        window: window.name.clone(),
                        until_ms,
                        summary: route.mute_summary,
                    });
                    if !route.mute_summary {
                        continue;
                    }
                }
                let template = self.templates.resolve(route.template.as_deref(), &name);
                let rendered = self.templates.render_event(&template, &meta, &data);
                if let Some(e) = &rendered.error {
                    render_errors.push(e.clone());
                }
                if let Some((window, until_ms)) = muted {
                    let line = self.item_line(source.kind, &data);
                    held.push(muted_item(
                        route,
                        &window.name,
                        until_ms,
                        &meta,
                        data.data(),
                        &rendered.text,
                        line,
                    ));
                    continue;
                }
                if let Some(hold) = &route.hold {
                    let line = self.item_line(source.kind, &data);
                    held.push(held_item(
                        route,
                        hold,
                        &meta,
                        data.data(),
                        &rendered.text,
                        line,
                    ));
                    continue;
                }
                let addressing = Addressing {
                    route: &route.name,
                    to: &route.to,
                    mentions: &route.mentions,
                    split_long: route.split_long,
                    thread: route.thread,
                    update: route.update,
                    entity: entity.as_deref(),
                    split_seed: &format!("{}\u{0}{delivery_id}\u{0}{}", source.name, route.name),
                };
                messages.extend(outbox_messages(
                    &addressing,
                    &rendered.text,
                    rendered.error.as_deref(),
                ));
                if route.dm_assignees {
                    messages.extend(self.assignee_messages(route, data.data(), &mut render_errors));
                }
            }
        }
        Planned {
            event: NewEvent {
                source: source.name.clone(),
                delivery_id,
                name,
                entity,
                routes: routes.iter().map(|r| r.name.clone()).collect(),
                messages,
                held,
            },
            render_errors,
            quiet,
        }
    }

    /// The first silence (config, then stored) that covers this route's message.
    fn silenced(
        &self,
        now: i64,
        meta: &EventMeta<'_>,
        route: &Route,
        payload: &Value,
    ) -> Option<Quiet> {
        let stored = self.stored_silences.load();
        self.router
            .silences
            .iter()
            .chain(stored.iter())
            .find(|s| s.silences(now, meta.source, meta.name, &route.name, payload))
            .map(|s| Quiet::Silenced {
                route: route.name.clone(),
                silence: s.label.clone(),
                comment: s.comment.clone(),
            })
    }
}

/// The template of a transcript's direct message to an action-item assignee.
const ASSIGNEE_TEMPLATE: &str = "roam/assignee";

/// Where and how one route's message about one event (or one group) goes.
#[derive(Debug, Clone)]
pub struct Addressing<'a> {
    pub route: &'a str,
    pub to: &'a [String],
    pub mentions: &'a [String],
    /// Over Roam's cap: split into thread replies instead of cutting.
    pub split_long: bool,
    /// Messages about one entity go into one thread (`threadKey`).
    pub thread: bool,
    /// The first message about an entity is edited in place by later ones.
    pub update: bool,
    /// What the message is about; thread and update need one.
    pub entity: Option<&'a str>,
    /// Seeds the thread key of a split message that has no entity thread.
    pub split_seed: &'a str,
}

/// The outbox rows for one rendered text: one per destination chat, or several when
/// the text is split into thread replies.
pub fn outbox_messages(
    a: &Addressing<'_>,
    text: &str,
    render_error: Option<&str>,
) -> Vec<NewMessage> {
    let entity_thread = match (a.thread, a.entity) {
        (true, Some(e)) => Some(thread_key("rn-t-", &format!("{}\u{0}{e}", a.route))),
        _ => None,
    };
    // Over Roam's cap: cut with "… N more bytes", or (split_long) post the first part
    // and the rest as replies in its thread, under one threadKey.
    let mut parts = vec![text.to_string()];
    let mut thread = entity_thread.clone();
    if a.split_long && text.len() > ROAM_MAX_TEXT_BYTES {
        parts = split_message(text, ROAM_MAX_TEXT_BYTES - 200);
        thread = thread.or_else(|| Some(thread_key("rn-split-", a.split_seed)));
    }
    let upsert_entity = a.entity.filter(|_| a.update);
    let mut out = Vec::with_capacity(parts.len() * a.to.len());
    for (n, part) in parts.iter().enumerate() {
        let text = if n == 0 {
            with_mentions(a.mentions, part)
        } else {
            part.clone()
        };
        let text = fit_message(&text, ROAM_MAX_TEXT_BYTES);
        for chat in a.to {
            let (op, entity_key) = match upsert_entity {
                Some(e) if n == 0 => (
                    MessageOp::Upsert,
                    Some(format!("{}{KEY_SEP}{chat}{KEY_SEP}{e}", a.route)),
                ),
                _ => (MessageOp::Post, None),
            };
            out.push(NewMessage {
                route: a.route.to_string(),
                chat: chat.clone(),
                request: chat_post_body(chat, &text, thread.as_deref(), op == MessageOp::Upsert),
                render_error: render_error.map(str::to_string),
                op,
                entity_key,
            });
        }
    }
    out
}

/// An event's item in the summary of a mute window, sent when the window ends.
fn muted_item(
    route: &Route,
    window: &str,
    until_ms: i64,
    meta: &EventMeta<'_>,
    payload: &Value,
    text: &str,
    line: Option<String>,
) -> HeldItem {
    let mut spec = group_spec(route, route.hold.as_ref(), Default::default());
    spec.muted = Some(window.to_string());
    let mut item = Item::new(meta.name, meta.entity, text, payload);
    if let Some(line) = line {
        item.title = line;
    }
    let no_hold = Hold::default();
    HeldItem {
        route: route.name.clone(),
        key: format!("\u{3}muted{KEY_SEP}{window}{KEY_SEP}{until_ms}"),
        spec: serde_json::to_string(&spec).unwrap_or_default(),
        fingerprint: grouping::fingerprint(
            route.hold.as_ref().unwrap_or(&no_hold),
            meta.source,
            meta.name,
            meta.entity,
            payload,
            text,
        ),
        item: serde_json::to_string(&item).unwrap_or_default(),
        wait_ms: 0,
        interval_ms: 0,
        flush_at: Some(until_ms),
    }
}

/// An event's item for a held route (see `grouping`).
fn held_item(
    route: &Route,
    hold: &Hold,
    meta: &EventMeta<'_>,
    payload: &Value,
    text: &str,
    line: Option<String>,
) -> HeldItem {
    let unique = format!("{}{KEY_SEP}{}", meta.delivery_id, route.name);
    let (key, labels) = grouping::group_key(hold, payload, &unique);
    let mut item = Item::new(meta.name, meta.entity, text, payload);
    if let Some(line) = line {
        item.title = line;
    }
    let spec = group_spec(route, Some(hold), labels);
    HeldItem {
        route: route.name.clone(),
        key,
        spec: serde_json::to_string(&spec).unwrap_or_default(),
        fingerprint: grouping::fingerprint(
            hold,
            meta.source,
            meta.name,
            meta.entity,
            payload,
            text,
        ),
        flush_at: item.is_resolved().then(now_ms),
        item: serde_json::to_string(&item).unwrap_or_default(),
        wait_ms: hold.wait_ms,
        interval_ms: hold.interval_ms,
    }
}

/// What the flusher needs to send a group of this route.
fn group_spec(
    route: &Route,
    hold: Option<&Hold>,
    labels: std::collections::BTreeMap<String, String>,
) -> GroupSpec {
    let d = Hold::default();
    let h = hold.unwrap_or(&d);
    GroupSpec {
        to: route.to.clone(),
        mentions: route.mentions.clone(),
        template: h.template.clone(),
        thread: route.thread,
        update: route.update,
        split_long: route.split_long,
        interval_ms: h.interval_ms,
        repeat_ms: h.repeat_ms,
        max_messages: h.max_messages,
        max_window_ms: h.max_window_ms,
        shown: h.shown,
        labels,
        muted: None,
        digest: false,
    }
}

impl Pipeline {
    /// The client's address: the peer, or, when the peer is a trusted proxy, the
    /// right-most `X-Forwarded-For` entry that is not one (entries left of it were written
    /// by whoever sent the request and prove nothing).
    pub fn client_ip(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        let trusted = |ip: &std::net::IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let hops: Vec<std::net::IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !trusted(ip))
            .copied()
            .unwrap_or(peer)
    }

    /// Transcripts: one direct message per action-item assignee with a Roam user id
    /// (`assignee_user`, resolved by the transcript worker), listing their items.
    fn assignee_messages(
        &self,
        route: &Route,
        payload: &Value,
        errors: &mut Vec<String>,
    ) -> Vec<NewMessage> {
        let items = payload
            .get("action_items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut by_user: Vec<(String, Vec<Value>)> = Vec::new();
        for it in items {
            let Some(user) = it
                .get("assignee_user")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            match by_user.iter_mut().find(|(u, _)| *u == user) {
                Some((_, list)) => list.push(it),
                None => by_user.push((user, vec![it])),
            }
        }
        let mut out = Vec::new();
        for (user, mine) in by_user {
            let mut ctx = payload.clone();
            if let Some(o) = ctx.as_object_mut() {
                o.insert(
                    "assignee".into(),
                    json!({ "user": user, "name": mine[0].get("assignee_name") }),
                );
                o.insert("my_items".into(), json!(mine));
            }
            let text = match self.templates.render_raw(ASSIGNEE_TEMPLATE, &ctx) {
                Ok(t) => t.trim_end().to_string(),
                Err(e) => {
                    errors.push(e.to_string());
                    let titles: Vec<&str> = mine
                        .iter()
                        .filter_map(|i| i.get("title").and_then(Value::as_str))
                        .collect();
                    format!("Your action items: {}", titles.join("; "))
                }
            };
            let text = fit_message(&text, ROAM_MAX_TEXT_BYTES);
            out.push(NewMessage {
                route: route.name.clone(),
                chat: user.clone(),
                request: chat_post_body(&user, &text, None, false),
                render_error: None,
                op: MessageOp::Post,
                entity_key: None,
            });
        }
        out
    }

    /// An event's one-line form in group messages: the kind's `line` template (e.g.
    /// `alertmanager/line`) if it has one and it renders, else None (the first line of
    /// its message is used).
    fn item_line(&self, kind: &str, data: &handlebars::Context) -> Option<String> {
        let name = format!("{kind}/line");
        if !self.templates.has(&name) {
            return None;
        }
        match self.templates.render_context(&name, data) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "line template failed; using the message's first line");
                None
            }
        }
    }
}

/// The route's mentions, in Roam's syntax, before the text (which stays under the cap).
fn with_mentions(mentions: &[String], text: &str) -> String {
    if mentions.is_empty() {
        return text.to_string();
    }
    let tags: Vec<String> = mentions.iter().map(|m| format!("<@{m}>")).collect();
    let prefix = tags.join(" ") + " ";
    let room = crate::render::ROAM_MAX_TEXT_BYTES.saturating_sub(prefix.len());
    prefix + &crate::render::fit_message(text, room)
}

/// The `chat.post` request body (`chat.json`: `chat` plus exactly one content type;
/// `threadKey` at most 64 characters).
/// `sync` asks Roam for the message's timestamp (needed to edit it later).
pub fn chat_post_body(chat: &str, text: &str, thread_key: Option<&str>, sync: bool) -> String {
    let mut body = json!({ "chat": chat, "text": text, "markdown": true });
    if let Some(k) = thread_key {
        body["threadKey"] = json!(k);
    }
    if sync {
        body["sync"] = json!(true);
    }
    body.to_string()
}

/// A stable `threadKey` from `seed` (Roam: at most 64 characters).
fn thread_key(prefix: &str, seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(seed.as_bytes());
    format!("{prefix}{}", &hex::encode(h)[..32])
}
