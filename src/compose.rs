//! Message composition: a rendered message (text or card) and a route's addressing become
//! the outbox rows (`chat.post` bodies), one per destination chat, continued in thread
//! replies or cut to Roam's size, with mentions, `threadKey` and the upsert key. Used by the ingest step
//! and by the group flusher alike.

use crate::render::Content;
use crate::storage::{KEY_SEP, MessageOp, NewMessage};
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
    let upsert_entity = a.entity.filter(|_| a.update);
    let mut out = Vec::with_capacity((rest.len() + 1) * a.to.len());
    for chat in a.to {
        let (op, entity_key) = match upsert_entity {
            Some(e) => (
                MessageOp::Upsert,
                Some(format!("{}{KEY_SEP}{chat}{KEY_SEP}{e}", a.route)),
            ),
            None => (MessageOp::Post, None),
        };
        out.push(NewMessage {
            route: a.route.to_string(),
            chat: chat.clone(),
            request: post_body(chat, &first, thread.as_deref(), op == MessageOp::Upsert),
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
                render_error: render_error.map(str::to_string),
                op: MessageOp::Post,
                entity_key: None,
            });
        }
    }
    out
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
