//! The directory as loaded: chats by name, users by email.

use std::collections::HashMap;

use crate::storage::DirEntry;

/// A chat the bot can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub kind: Option<String>,
    /// In Roam's latest listing (false: only an earlier one had it).
    pub fresh: bool,
}

impl Chat {
    /// Where a message to this chat goes: a channel's group, else the chat itself.
    pub fn target(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.id)
    }
}

/// A `#Name` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatHit<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// Only an earlier listing had it: its last known id.
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("no chat the bot can see is named #{name}{}", candidates_text(.candidates))]
    Unknown {
        name: String,
        candidates: Vec<String>,
    },
    #[error("#{name} names {} chats: {}; use the id of the one you mean", .matches.len(), .matches.join(", "))]
    Ambiguous { name: String, matches: Vec<String> },
}

fn candidates_text(c: &[String]) -> String {
    if c.is_empty() {
        " (roam-notify chats lists them; is the bot a member?)".into()
    } else {
        format!(
            "; closest: {}",
            c.iter()
                .map(|n| format!("#{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    chats: Vec<Chat>,
    /// email (lowercase) → user id
    users: HashMap<String, String>,
}

impl Snapshot {
    /// From the cache's rows. The chats of the newest listing are fresh; older rows are
    /// kept as the last known ids of names Roam no longer lists.
    pub fn from_entries(entries: Vec<DirEntry>) -> Snapshot {
        let newest = entries
            .iter()
            .filter(|e| e.kind == "chat")
            .map(|e| e.seen_at)
            .max()
            .unwrap_or(0);
        let mut s = Snapshot::default();
        for e in entries {
            match e.kind.as_str() {
                "chat" => s.chats.push(Chat {
                    fresh: e.seen_at == newest,
                    id: e.id,
                    name: e.label,
                    group: e.group,
                    kind: e.chat_kind,
                }),
                "user" => {
                    s.users.insert(e.key, e.id);
                }
                _ => {}
            }
        }
        s
    }

    pub fn chats(&self) -> &[Chat] {
        &self.chats
    }

    /// The chat named `name` (case-insensitive, exact otherwise). One fresh match wins;
    /// several are ambiguous; with none, the most recent stale one is its last known id.
    pub fn chat(&self, name: &str) -> Result<ChatHit<'_>, NameError> {
        let same: Vec<&Chat> = self
            .chats
            .iter()
            .filter(|c| c.name.to_lowercase() == name.to_lowercase())
            .collect();
        let fresh: Vec<&&Chat> = same.iter().filter(|c| c.fresh).collect();
        match (fresh.as_slice(), same.first()) {
            ([one], _) => Ok(ChatHit {
                id: one.target(),
                name: &one.name,
                stale: false,
            }),
            ([], Some(old)) => Ok(ChatHit {
                id: old.target(),
                name: &old.name,
                stale: true,
            }),
            ([], None) => Err(NameError::Unknown {
                name: name.to_string(),
                candidates: self.closest(name),
            }),
            (many, _) => Err(NameError::Ambiguous {
                name: name.to_string(),
                matches: many
                    .iter()
                    .map(|c| format!("{} ({})", c.target(), c.kind.as_deref().unwrap_or("chat")))
                    .collect(),
            }),
        }
    }

    /// Up to three fresh chat names most like `name`.
    fn closest(&self, name: &str) -> Vec<String> {
        let want = name.to_lowercase();
        let mut scored: Vec<(f64, &str)> = self
            .chats
            .iter()
            .filter(|c| c.fresh)
            .map(|c| {
                (
                    strsim::jaro_winkler(&want, &c.name.to_lowercase()),
                    c.name.as_str(),
                )
            })
            .filter(|(score, _)| *score > 0.7)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored.dedup_by(|a, b| a.1 == b.1);
        scored
            .into_iter()
            .take(3)
            .map(|(_, n)| n.to_string())
            .collect()
    }

    /// The user id of an email, if known.
    pub fn user(&self, email: &str) -> Option<&str> {
        self.users
            .get(&email.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The emails it knows.
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    pub(super) fn with_user(mut self, email: &str, id: &str) -> Snapshot {
        self.users
            .insert(email.to_ascii_lowercase(), id.to_string());
        self
    }
}
