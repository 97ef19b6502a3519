//! Asking Roam what names and emails stand for, and remembering it.

use std::collections::BTreeSet;

use super::{Destination, Directory, Snapshot};
use crate::pacer::Pacer;
use crate::roam::{RoamClient, RoamError};
use crate::storage::{DirEntry, Store, now_ms};

/// What a lookup talks to: Roam through the shared pacer, and the durable cache (none for
/// `check`, which keeps what it learns in memory).
#[derive(Clone, Copy)]
pub struct Lookup<'a> {
    pub client: &'a RoamClient,
    pub pacer: &'a Pacer,
    pub store: Option<&'a Store>,
}

/// Asks Roam about the names and emails written in the config (`written`): `chat.list`
/// (every page) when there is a `#Name` or, with `relist`, when chats are known;
/// `user.lookup` for each email (and, with `relist`, each email already known). With
/// nothing written and nothing known, no call is made. What Roam confirms is stored with the
/// time; nothing is deleted, so a name Roam stops listing keeps its last known id.
pub async fn refresh(
    dir: &Directory,
    l: Lookup<'_>,
    written: &[(String, Destination)],
    relist: bool,
) -> Result<(), RoamError> {
    let now = now_ms();
    let mut entries = Vec::new();
    let snapshot = dir.snapshot();
    let names = written
        .iter()
        .any(|(_, d)| matches!(d, Destination::Name(_)));
    // A periodic refresh lists chats only for a daemon that uses names (chat.list needs
    // the chat:read scope, which a key used without names may lack).
    if names || (relist && !snapshot.chats().is_empty()) {
        let chats = l
            .pacer
            .call("listing chats", || l.client.chat_list_all())
            .await?;
        entries.extend(chats.into_iter().map(|c| DirEntry {
            kind: "chat".into(),
            chat_kind: Some(c.kind().to_string()),
            key: c.id.clone(),
            id: c.id,
            label: c.name,
            group: c.group,
            seen_at: now,
        }));
    }
    let mut emails: BTreeSet<String> = written
        .iter()
        .filter_map(|(_, d)| match d {
            Destination::Email(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    if relist {
        emails.extend(snapshot.emails().map(str::to_string));
    }
    if entries.is_empty() && emails.is_empty() {
        return Ok(());
    }
    for email in emails {
        if let Some(id) = l
            .pacer
            .call("looking up users", || l.client.user_lookup(&email))
            .await?
        {
            entries.push(user_entry(&email, &id, now));
        }
    }
    match l.store {
        Some(store) => {
            store.put_directory(&entries).await.map_err(store_error)?;
            dir.load(store).await.map_err(store_error)?;
        }
        None => dir.set(Snapshot::from_entries(entries)),
    }
    Ok(())
}

/// The Roam user with this email: from the cache, else `user.lookup` (remembered).
/// `Ok(None)`: Roam has no such user.
pub async fn user_id(
    dir: &Directory,
    l: Lookup<'_>,
    email: &str,
) -> Result<Option<String>, RoamError> {
    let snapshot = dir.snapshot();
    if let Some(id) = snapshot.user(email) {
        return Ok(Some(id.to_string()));
    }
    let found = l
        .pacer
        .call("looking up users", || l.client.user_lookup(email))
        .await?;
    if let Some(id) = &found {
        if let Some(store) = l.store
            && let Err(e) = store
                .put_directory(&[user_entry(email, id, now_ms())])
                .await
        {
            tracing::warn!(error = %e, "cannot cache a user lookup; it is asked again next time");
        }
        dir.set(Snapshot::clone(&snapshot).with_user(email, id));
    }
    Ok(found)
}

fn user_entry(email: &str, id: &str, now: i64) -> DirEntry {
    DirEntry {
        kind: "user".into(),
        key: email.to_ascii_lowercase(),
        id: id.to_string(),
        label: email.to_ascii_lowercase(),
        group: None,
        chat_kind: None,
        seen_at: now,
    }
}

/// The cache cannot be read or written: reported like Roam being unreachable, so the
/// caller falls back to what it has.
fn store_error(e: crate::storage::StoreError) -> RoamError {
    RoamError::Network(format!("directory cache: {e}"))
}
