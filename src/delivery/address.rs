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
    if let Some(chat) = chat {
        m.request = with_chat(&m.request, &chat);
    }
    if let Some(l) = lookup {
        while let Some(start) = m.request.find(MENTION) {
            let rest = &m.request[start + MENTION.len()..];
            let Some(end) = rest.find('>') else { break };
            let email = rest[..end].to_string();
            let replacement = match directory::user_id(dir, l, &email).await {
                Ok(Some(id)) => format!("<@{id}>"),
                // No such person: the email, as text, so the message still says who.
                Ok(None) => email.clone(),
                Err(e) => return Address::Later(e),
            };
            m.request
                .replace_range(start..start + MENTION.len() + end + 1, &replacement);
        }
    }
    Address::Ready(m)
}

/// The request with its `chat` set.
fn with_chat(request: &str, chat: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(request) {
        Ok(mut v) => {
            v["chat"] = serde_json::Value::String(chat.to_string());
            v.to_string()
        }
        Err(_) => request.to_string(),
    }
}
