//! Message composition: a rendered text and a route's addressing become the outbox rows
//! (`chat.post` bodies), one per destination chat, split into thread replies or cut to
//! Roam's size, with mentions, `threadKey` and the upsert key. Used by the ingest step
//! and by the group flusher alike.

use serde_json::json;

use crate::render::{ROAM_MAX_TEXT_BYTES, fit_message, split_message};
use crate::storage::{KEY_SEP, MessageOp, NewMessage};

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

/// The route's mentions, in Roam's syntax, before the text (which stays under the cap).
fn with_mentions(mentions: &[String], text: &str) -> String {
    if mentions.is_empty() {
        return text.to_string();
    }
    let tags: Vec<String> = mentions.iter().map(|m| format!("<@{m}>")).collect();
    let prefix = tags.join(" ") + " ";
    let room = ROAM_MAX_TEXT_BYTES.saturating_sub(prefix.len());
    prefix + &fit_message(text, room)
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
