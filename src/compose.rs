//! Message composition: a rendered message (text or card) and a route's addressing become
//! the outbox rows (`chat.post` bodies), one per destination chat, continued in thread
//! replies or cut to Roam's size, with mentions, `threadKey` and the upsert key. Used by the ingest step
//! and by the group flusher alike.
//!
//! A plain route's message (not held, muted or split, and keeping at most 4 KiB) is
//! rendered when it is sent rather than when it is accepted ([`RenderLater`]): the outbox row keeps what to render, and
//! delivery makes the same body from it with the templates then in force
//! ([`render_later`]). Accepting a webhook then costs no template work
//! (docs/performance.md).

use std::borrow::Cow;

use serde_json::Value;

use crate::render::{Content, EventMeta, Format, Templates, fallback_content};
use crate::storage::{KEY_SEP, MessageOp, MessageRecord, NewMessage};
use crate::text::{ROAM_MAX_TEXT_BYTES, fit_message, split_message};

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

impl<'a> Addressing<'a> {
    /// A plain post to `to`: no mentions, thread or edit (a direct message, a preview).
    pub fn plain(route: &'a str, to: &'a [String]) -> Addressing<'a> {
        Addressing {
            route,
            to,
            mentions: &[],
            split_long: false,
            thread: false,
            update: false,
            entity: None,
            split_seed: route,
        }
    }
}

/// The outbox rows for one rendered message: one per destination chat, or several when
/// it is continued in thread replies.
pub fn outbox_messages(
    a: &Addressing<'_>,
    content: &Content,
    render_error: Option<&str>,
) -> Vec<NewMessage> {
    let entity_thread = match (a.thread, a.entity) {
        (true, Some(e)) => Some(thread_key("rn-t-", &format!("{}\u{0}{e}", a.route))),
        _ => None,
    };
    let tags = mention_tags(a.mentions);
    // Over Roam's cap: cut with a note, or (split_long) post the first part and the rest
    // as replies in its thread, under one threadKey. The first part carries the mentions.
    let (first, rest) = match content {
        Content::Text(text) => {
            let mut parts = vec![text.clone()];
            if a.split_long && text.len() > ROAM_MAX_TEXT_BYTES {
                parts = split_message(text, ROAM_MAX_TEXT_BYTES - 200);
            }
            let first = if parts.is_empty() {
                String::new()
            } else {
                parts.remove(0)
            };
            let first = match &tags {
                Some(t) => format!(
                    "{t} {}",
                    fit_message(&first, ROAM_MAX_TEXT_BYTES.saturating_sub(t.len() + 1))
                ),
                None => first,
            };
            (Body::Text(fit_message(&first, ROAM_MAX_TEXT_BYTES)), parts)
        }
        Content::Card(card) => {
            let fitted = match &tags {
                Some(t) => {
                    let mut card = card.clone();
                    card.mention(t);
                    card.blocks(a.split_long)
                }
                None => card.blocks(a.split_long),
            };
            let rest = fitted
                .overflow
                .as_deref()
                .map(|o| split_message(o, ROAM_MAX_TEXT_BYTES - 200))
                .unwrap_or_default();
            (Body::Card(fitted.blocks, fitted.color), rest)
        }
    };
    let thread = match rest.is_empty() {
        true => entity_thread,
        false => entity_thread.or_else(|| Some(thread_key("rn-split-", a.split_seed))),
    };
    let mut out = Vec::with_capacity((rest.len() + 1) * a.to.len());
    for chat in a.to {
        let (op, entity_key) = upsert(a, chat);
        out.push(NewMessage {
            route: a.route.to_string(),
            chat: chat.clone(),
            request: post_body(chat, &first, thread.as_deref(), op == MessageOp::Upsert),
            render: None,
            render_error: render_error.map(str::to_string),
            op,
            entity_key,
        });
    }
    for part in &rest {
        let body = Body::Text(fit_message(part, ROAM_MAX_TEXT_BYTES));
        for chat in a.to {
            out.push(NewMessage {
                route: a.route.to_string(),
                chat: chat.clone(),
                request: post_body(chat, &body, thread.as_deref(), false),
                render: None,
                render_error: render_error.map(str::to_string),
                op: MessageOp::Post,
                entity_key: None,
            });
        }
    }
    out
}

/// Whether the message to `chat` edits its entity's earlier one (route `update`), and
/// the key of that entity's message: route, chat and entity joined by `KEY_SEP`.
fn upsert(a: &Addressing<'_>, chat: &str) -> (MessageOp, Option<String>) {
    match a.entity.filter(|_| a.update) {
        Some(e) => (
            MessageOp::Upsert,
            Some(format!("{}{KEY_SEP}{chat}{KEY_SEP}{e}", a.route)),
        ),
        None => (MessageOp::Post, None),
    }
}

/// What a message rendered when it is sent keeps in its outbox row
/// (`messages.render`): the template, the route's format, mentions, thread and update
/// settings, and the event as the templates see it (the payload, as far as the
/// configuration reads it, with `_event`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RenderLater<'a> {
    pub template: Cow<'a, str>,
    pub format: Format,
    #[serde(default)]
    pub mentions: Cow<'a, [String]>,
    #[serde(default)]
    pub thread: bool,
    #[serde(default)]
    pub update: bool,
    /// `data` holds only what the configuration reads of the payload (not all of it).
    #[serde(default)]
    pub partial: bool,
    pub data: Cow<'a, Value>,
}

impl RenderLater<'_> {
    /// As JSON, if that takes at most `max` bytes. Writing stops as soon as it would
    /// take more, so a large payload costs `max` bytes of work, not all of its own.
    pub fn to_json_within(&self, max: usize) -> Option<String> {
        let mut buf = vec![0u8; max];
        let mut rest = &mut buf[..];
        serde_json::to_writer(&mut rest, self).ok()?;
        let used = max - rest.len();
        buf.truncate(used);
        String::from_utf8(buf).ok()
    }
}

/// The outbox rows of a message rendered when it is sent, one per destination chat:
/// no body yet, `render` (a [`RenderLater`] as JSON) instead. `a` must not split
/// (`split_long`): its parts are only known once rendered.
pub fn deferred_messages(a: &Addressing<'_>, render: &str) -> Vec<NewMessage> {
    a.to.iter()
        .map(|chat| {
            let (op, entity_key) = upsert(a, chat);
            NewMessage {
                route: a.route.to_string(),
                chat: chat.clone(),
                request: String::new(),
                render: Some(render.to_string()),
                render_error: None,
                op,
                entity_key,
            }
        })
        .collect()
}

/// A stored [`RenderLater`] rendered for `chat` with `templates` (those in force): the
/// `chat.post` body, as `outbox_messages` would have made it when the event was
/// accepted, and the template's failure, if any (the body is then the plain fallback
/// form). Err: the stored JSON cannot be read.
pub fn render_later(
    templates: &Templates,
    render: &str,
    route: &str,
    chat: &str,
) -> Result<(String, Option<String>), serde_json::Error> {
    let spec: RenderLater<'_> = serde_json::from_str(render)?;
    let event = spec.data.get("_event");
    let field = |k: &str| event.and_then(|e| e.get(k)).and_then(Value::as_str);
    let [name, source, kind, delivery_id] =
        ["name", "source", "kind", "delivery_id"].map(|k| field(k).unwrap_or("").to_string());
    let entity = field("entity").map(str::to_string);
    let meta = EventMeta {
        name: &name,
        source: &source,
        kind: &kind,
        delivery_id: &delivery_id,
        entity: entity.as_deref(),
    };
    let data = handlebars::Context::from(spec.data.into_owned());
    let mut rendered = templates.render_event(&spec.template, spec.format, &meta, &data);
    if let (true, Some(e)) = (rendered.fallback && spec.partial, &rendered.error) {
        // The whole payload is not kept: the fallback says its JSON is what was read.
        let note = format!("{e}; shown: the fields the configuration reads");
        rendered.content = fallback_content(&meta, data.data().clone(), &note);
    }
    let to = [chat.to_string()];
    let a = Addressing {
        route,
        to: &to,
        mentions: &spec.mentions,
        split_long: false,
        thread: spec.thread,
        update: spec.update,
        entity: entity.as_deref(),
        split_seed: route,
    };
    let body = outbox_messages(&a, &rendered.content, None)
        .into_iter()
        .next()
        .map(|m| m.request)
        .unwrap_or_default();
    Ok((body, rendered.error))
}

/// A listed message whose body is made when it is sent (`render` set, `request` still
/// empty) given the body `templates` make of it now, to show (the console, the admin
/// API); the template's failure, if any, as its `render_error`.
pub fn fill_preview(templates: &Templates, m: &mut MessageRecord) {
    let Some(render) = m.render.as_deref().filter(|_| m.request.is_empty()) else {
        return;
    };
    match render_later(templates, render, &m.route, &m.chat) {
        Ok((request, error)) => {
            m.request = request;
            m.render_error = error;
        }
        Err(e) => m.render_error = Some(format!("what to render cannot be read: {e}")),
    }
}

/// The route's mentions in Roam's syntax (`<@U-…>`, `<@all>`), if it has any.
fn mention_tags(mentions: &[String]) -> Option<String> {
    (!mentions.is_empty()).then(|| {
        mentions
            .iter()
            .map(|m| format!("<@{m}>"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// A message's content as Roam takes it: markdown text, or Block Kit and a colour.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Text(String),
    Card(Vec<crate::roam::blocks::Block>, Option<String>),
}

/// The `chat.post` request body (`chat.json`: `chat` plus exactly one content type:
/// `text`, or `blocks` with an optional `color`; `threadKey` at most 64 characters).
/// `sync` asks Roam for the message's timestamp (needed to edit it later).
pub fn post_body(chat: &str, body: &Body, thread_key: Option<&str>, sync: bool) -> String {
    let (text, blocks, color) = match body {
        Body::Text(text) => (Some(text.as_str()), None, None),
        Body::Card(blocks, color) => (None, Some(blocks.as_slice()), color.as_deref()),
    };
    let post = PostBody {
        blocks,
        chat,
        color,
        markdown: text.map(|_| true),
        sync: sync.then_some(true),
        text,
        thread_key,
    };
    serde_json::to_string(&post).unwrap_or_default()
}

/// `chat.post`'s body, serialised straight from the borrowed parts (keys in the order a
/// JSON object of them has always been written: sorted).
#[derive(serde::Serialize)]
struct PostBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks: Option<&'a [crate::roam::blocks::Block]>,
    chat: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    markdown: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(rename = "threadKey", skip_serializing_if = "Option::is_none")]
    thread_key: Option<&'a str>,
}

/// A stable `threadKey` from `seed` (Roam: at most 64 characters).
fn thread_key(prefix: &str, seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(seed.as_bytes());
    format!("{prefix}{}", &hex::encode(h)[..32])
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn render_later_json_is_kept_only_within_its_bound() {
        let data = serde_json::json!({ "title": "x".repeat(100), "_event": { "name": "e" } });
        let later = RenderLater {
            template: Cow::Borrowed("t"),
            format: Format::Text,
            mentions: Cow::Borrowed(&[]),
            thread: false,
            update: false,
            partial: true,
            data: Cow::Borrowed(&data),
        };
        let whole = serde_json::to_string(&later).unwrap();
        assert_eq!(
            later.to_json_within(whole.len()).as_deref(),
            Some(whole.as_str())
        );
        assert_eq!(later.to_json_within(4096).as_deref(), Some(whole.as_str()));
        assert_eq!(later.to_json_within(whole.len() - 1), None);
        assert_eq!(later.to_json_within(0), None);
    }
}
