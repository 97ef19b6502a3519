//! Planning one event: route it, render each route's message, and prepare the rows to
//! commit (outbox messages, or items held in groups). Pure and in memory; `accept`
//! commits what this plans, and `check` / `routes test` show it offline.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::Pipeline;
use crate::compose::{Addressing, RenderLater, deferred_messages, outbox_messages};
use crate::grouping::{self, GroupKey, GroupSpec, Hold, Item};
use crate::inbound::{Event, Source};
use crate::render::{Content, EventMeta, event_context, fallback_content};
use crate::routing::{Resolved, Route};
use crate::storage::{HeldItem, KEY_SEP, NewEvent, NewMessage, now_ms};

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

/// A template that failed while rendering a route's message (it is sent in its plain
/// fallback form).
#[derive(Debug, Clone)]
pub struct RenderFailure {
    pub route: String,
    pub error: String,
}

/// When a plain route's message body is made (one not held, muted or split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// Now: previews and dry runs show the bodies (`check`, `routes test`, the console).
    Now,
    /// When it is sent: what accepting stores (see `compose::RenderLater`), when it
    /// keeps at most `RENDER_LATER_MAX_BYTES`.
    WhenSent,
}

/// The most a message rendered when sent may keep (`compose::RenderLater` as JSON): a
/// payload that templates read all of (the `default` template's `{{json this}}`) can
/// be many times its message, and every byte of an outbox row is written twice (WAL and
/// database); such a message is rendered at once instead.
const RENDER_LATER_MAX_BYTES: usize = 4096;

/// An event ready to commit, with the template failures met while rendering it.
#[derive(Debug)]
pub struct Planned {
    pub event: NewEvent,
    pub render_errors: Vec<RenderFailure>,
    /// Matched routes that send nothing now (silenced or muted).
    pub quiet: Vec<Quiet>,
}

impl Pipeline {
    /// Routes and renders one event into the rows to commit (with `Rendering::WhenSent`,
    /// a plain route's rows say what to render instead).
    pub fn plan(&self, source: &Source, event: Event, rendering: Rendering) -> Planned {
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
            whole,
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
            let directory = self.directory.snapshot();
            for route in &routes {
                if let Some(c) = self.silences.covering(
                    now,
                    meta.source,
                    meta.name,
                    &route.name,
                    data.data(),
                    whole.is_some(),
                ) {
                    quiet.push(Quiet::Silenced {
                        route: route.name.clone(),
                        silence: c.silence,
                        comment: c.comment,
                    });
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
                let targets = self.router.targets(route, &data, &directory);
                let template = self.templates.resolve(route.template.as_deref(), &name);
                let addressing = Addressing {
                    route: &route.name,
                    to: &targets.to,
                    mentions: &targets.mentions,
                    split_long: route.split_long,
                    thread: route.thread,
                    update: route.update,
                    entity: entity.as_deref(),
                    split_seed: &format!("{}\u{0}{delivery_id}\u{0}{}", source.name, route.name),
                };
                let later = (rendering == Rendering::WhenSent
                    && muted.is_none()
                    && route.hold.is_none()
                    && !route.split_long)
                    .then(|| RenderLater {
                        template: Cow::Borrowed(&template),
                        format: route.format,
                        mentions: Cow::Borrowed(&targets.mentions),
                        thread: route.thread,
                        update: route.update,
                        partial: whole.is_some(),
                        data: Cow::Borrowed(data.data()),
                    })
                    .and_then(|l| l.to_json_within(RENDER_LATER_MAX_BYTES));
                if let Some(render) = later {
                    messages.extend(deferred_messages(&addressing, &render));
                    if route.dm_assignees {
                        messages.extend(self.assignee_messages(
                            route,
                            data.data(),
                            &mut render_errors,
                        ));
                    }
                    continue;
                }
                let mut rendered =
                    self.templates
                        .render_event(&template, route.format, &meta, &data);
                if rendered.fallback
                    && let (Some(text), Some(e)) = (&whole, &rendered.error)
                    && let Ok(full) = crate::inbound::parse_json(text)
                {
                    // The fallback shows the payload: all of it, not the part built.
                    rendered.content = fallback_content(&meta, full, e);
                }
                if let Some(e) = &rendered.error {
                    render_errors.push(RenderFailure {
                        route: route.name.clone(),
                        error: e.clone(),
                    });
                }
                if let Some((window, until_ms)) = muted {
                    let line = self.item_line(source.kind, &data);
                    held.push(muted_item(
                        route,
                        &targets,
                        (&window.name, until_ms),
                        &meta,
                        data.data(),
                        &rendered.content,
                        line,
                    ));
                    continue;
                }
                if let Some(hold) = &route.hold {
                    let line = self.item_line(source.kind, &data);
                    held.push(held_item(
                        route,
                        &targets,
                        hold,
                        &meta,
                        data.data(),
                        &rendered.content,
                        line,
                    ));
                    continue;
                }
                messages.extend(outbox_messages(
                    &addressing,
                    &rendered.content,
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
}

/// The template of a transcript's direct message to an action-item assignee.
const ASSIGNEE_TEMPLATE: &str = "roam/assignee";

/// An event's item in the summary of a mute window, sent when the window ends.
fn muted_item(
    route: &Route,
    targets: &Resolved,
    (window, until_ms): (&str, i64),
    meta: &EventMeta<'_>,
    payload: &Value,
    content: &Content,
    line: Option<String>,
) -> HeldItem {
    let mut spec = group_spec(route, targets, route.hold.as_ref(), Default::default());
    spec.muted = Some(window.to_string());
    let mut item = Item::new(meta.name, meta.entity, content, payload);
    if let Some(line) = line {
        item.title = line;
    }
    let no_hold = Hold::default();
    HeldItem {
        route: route.name.clone(),
        key: GroupKey::Muted {
            window: window.to_string(),
            until_ms,
        }
        .encode(),
        spec: serde_json::to_string(&spec).unwrap_or_default(),
        fingerprint: grouping::fingerprint(
            route.hold.as_ref().unwrap_or(&no_hold),
            meta.source,
            meta.name,
            meta.entity,
            payload,
            &item.text,
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
    targets: &Resolved,
    hold: &Hold,
    meta: &EventMeta<'_>,
    payload: &Value,
    content: &Content,
    line: Option<String>,
) -> HeldItem {
    let unique = format!("{}{KEY_SEP}{}", meta.delivery_id, route.name);
    let (key, labels) = grouping::group_key(hold, payload, &unique);
    let mut item = Item::new(meta.name, meta.entity, content, payload);
    if let Some(line) = line {
        item.title = line;
    }
    let spec = group_spec(route, targets, Some(hold), labels);
    HeldItem {
        route: route.name.clone(),
        key: key.encode(),
        spec: serde_json::to_string(&spec).unwrap_or_default(),
        fingerprint: grouping::fingerprint(
            hold,
            meta.source,
            meta.name,
            meta.entity,
            payload,
            &item.text,
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
    targets: &Resolved,
    hold: Option<&Hold>,
    labels: std::collections::BTreeMap<String, String>,
) -> GroupSpec {
    let d = Hold::default();
    let h = hold.unwrap_or(&d);
    GroupSpec {
        to: targets.to.clone(),
        mentions: targets.mentions.clone(),
        template: h.template.clone(),
        format: route.format,
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
    /// Transcripts: one direct message per action-item assignee with a Roam user id
    /// (`assignee_user`, resolved by the transcript worker), listing their items.
    fn assignee_messages(
        &self,
        route: &Route,
        payload: &Value,
        errors: &mut Vec<RenderFailure>,
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
            let content = match self.templates.render(ASSIGNEE_TEMPLATE, route.format, &ctx) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(RenderFailure {
                        route: route.name.clone(),
                        error: e.to_string(),
                    });
                    let titles: Vec<&str> = mine
                        .iter()
                        .filter_map(|i| i.get("title").and_then(Value::as_str))
                        .collect();
                    Content::Text(format!("Your action items: {}", titles.join("; ")))
                }
            };
            let to = [user];
            out.extend(outbox_messages(
                &Addressing::plain(&route.name, &to),
                &content,
                None,
            ));
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
