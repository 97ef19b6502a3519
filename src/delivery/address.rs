//! Resolving what the request path could not: a message's chat given as a placeholder
//! (`email:ADDR`, `name:#NAME`, `none:REASON`, see `directory::placeholder`) and mentions of
//! people by email (`<@email:ADDR>`), just before the message is sent.
//!
//! An email is looked up through the directory's cache, else `user.lookup` (paced, and
//! remembered). A message with no destination, or for an email Roam has no user for, is
//! dead-lettered with the reason: never silently dropped.

use crate::directory::placeholder::{EMAIL, NAME, NONE};
use crate::directory::{self, Directory, Lookup};
use crate::roam::RoamError;
use crate::storage::OutboxMessage;

/// A mention of a person by email, until the worker resolves it.
const MENTION: &str = "<@email:";

pub enum Address {
    /// Ready to send (its chat and mentions resolved).
    Ready(OutboxMessage),
    /// It cannot be sent: dead-letter it with this reason.
    Dead(String),
    /// Roam could not be asked now: try again later.
    Later(RoamError),
}

/// Resolves `m`'s placeholders. Without `lookup` (dry-run) emails stay as they are.
pub async fn address(mut m: OutboxMessage, dir: &Directory, lookup: Option<Lookup<'_>>) -> Address {
    if let Some(reason) = m.chat.strip_prefix(NONE) {
        return Address::Dead(reason.to_string());
    }
    let chat = if let Some(name) = m.chat.strip_prefix(NAME) {
        let name = name.trim_start_matches('#');
        match dir.snapshot().chat(name) {
            Ok(hit) => Some(hit.id.to_string()),
            Err(e) => return Address::Dead(e.to_string()),
        }
    } else if let (Some(email), Some(l)) = (m.chat.strip_prefix(EMAIL), lookup) {
        match directory::user_id(dir, l, email).await {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                return Address::Dead(format!(
                    "no destination: no Roam user has the email {email}"
                ));
            }
            Err(e) => return Address::Later(e),
        }
    } else {
        None
    };
    // Most messages need nothing: no JSON is parsed for them.
    if chat.is_none() && (lookup.is_none() || !m.request.contains(MENTION)) {
        return Address::Ready(m);
    }
    let Ok(mut body) = serde_json::from_str::<serde_json::Value>(&m.request) else {
        return Address::Ready(m);
    };
    if let Some(chat) = chat {
        body["chat"] = serde_json::Value::String(chat);
    }
    if let (Some(l), Some(text)) = (lookup, mention_text(&mut body)) {
        match resolve_mentions(text, dir, l).await {
            Ok(resolved) => *text = resolved,
            Err(e) => return Address::Later(e),
        }
    }
    m.request = body.to_string();
    Address::Ready(m)
}

/// Where `compose` puts a message's mentions: the start of its text, or of a card's
/// first section. Only there are `<@email:…>` tags resolved, so no text from a payload
/// can be taken for one.
fn mention_text(body: &mut serde_json::Value) -> Option<&mut String> {
    if body.get("text").is_some_and(serde_json::Value::is_string) {
        return match &mut body["text"] {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        };
    }
    let section = body
        .get_mut("blocks")?
        .as_array_mut()?
        .iter_mut()
        .find(|b| b["type"] == "section")?;
    match &mut section["text"]["text"] {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

/// The leading run of mention tags (`<@…> <@…> text`) with each `<@email:ADDR>` made the
/// person's `<@U-…>`, or the address as text when Roam has no such person.
async fn resolve_mentions(text: &str, dir: &Directory, l: Lookup<'_>) -> Result<String, RoamError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(tag_end) = rest
        .strip_prefix("<@")
        .and_then(|r| r.find('>'))
        .map(|i| i + 3)
    {
        let tag = &rest[..tag_end];
        match tag.strip_prefix(MENTION).and_then(|t| t.strip_suffix('>')) {
            Some(email) => match directory::user_id(dir, l, email).await? {
                Some(id) => out.push_str(&format!("<@{id}>")),
                None => out.push_str(email),
            },
            None => out.push_str(tag),
        }
        rest = &rest[tag_end..];
        match rest.strip_prefix(' ') {
            Some(r) => {
                out.push(' ');
                rest = r;
            }
            None => break,
        }
    }
    out.push_str(rest);
    Ok(out)
}
