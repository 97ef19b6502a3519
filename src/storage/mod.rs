//! Durable storage: accepted events, the message outbox, groups, silences and
//! transcript state, in SQLite (one daemon) or PostgreSQL (several replicas).
//!
//! Durability rules the rest of the daemon relies on:
//! - An event and all the messages it produced are written in one transaction, and the
//!   webhook is acknowledged only after that transaction is committed (`committer.rs`
//!   batches concurrent requests into one transaction: one fsync for many webhooks).
//! - No transaction is held open across an HTTP call to Roam: the delivery worker claims
//!   due rows, sends, then records the outcome in a new statement.
//!
//! `Store` is the one API; `sqlite/` and `postgres/` implement it. What each backend must
//! provide is the [`Backend`] trait in `contract.rs`, written once with its documentation;
//! a backend that lacks a method does not compile. What only matters with
//! several replicas (claims with leases, a shared rate limit, leader leases, sweep ticks)
//! is real on PostgreSQL and trivially true on SQLite, where one process owns the file.

/// The columns `mark_sending` sets from its `rendered` argument (`$2` the body, `$3` the
/// template failure): a message rendered now gets its body and loses its `render`; for
/// any other (`$2` null) they stay as they are.
macro_rules! rendered_columns {
    () => {
        "request = COALESCE($2, request),
         render = CASE WHEN $2 IS NULL THEN render END,
         render_error = CASE WHEN $2 IS NULL THEN render_error ELSE $3 END"
    };
}

pub mod committer;
mod contract;
pub mod leader;
mod portable;
mod postgres;
mod row;
mod sqlite;
pub mod testing;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use contract::Backend;
pub use postgres::{PgStore, redacted as redacted_url};
pub use sqlite::SqliteStore;
pub(crate) use sqlite::sqlite_path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open storage {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot create the storage directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "an in-memory SQLite database would lose every accepted webhook when the process stops; name a file (sqlite://FILE)"
    )]
    InMemory,
    #[error("cannot open {path} for writing batches: {source}")]
    OpenBatch {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("storage migration failed: {0}")]
    Migrate(sqlx::Error),
    #[error("storage error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("storage error: {0}")]
    Batch(#[from] rusqlite::Error),
    #[error("cannot flush {path} to disk: {source}")]
    Sync {
        path: String,
        source: std::io::Error,
    },
    #[error("storage is shutting down")]
    Closed,
}

/// One event of an accepted request, with the messages it produced.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source: String,
    pub delivery_id: String,
    pub name: String,
    pub entity: Option<String>,
    pub routes: Vec<String>,
    pub messages: Vec<NewMessage>,
    /// Items for grouped, deduplicated, capped or muted routes: they wait in a group
    /// and go out later as one message (`grouping`).
    pub held: Vec<HeldItem>,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub route: String,
    pub chat: String,
    /// The chat.post JSON body; empty when `render` is set.
    pub request: String,
    /// What to render when it is sent, instead of a body made now
    /// (`RenderLater` of `compose.rs`, as JSON).
    pub render: Option<String>,
    pub render_error: Option<String>,
    pub op: MessageOp,
    /// For `Upsert`: route, chat and entity joined by `KEY_SEP`, the key of `entity_messages`.
    pub entity_key: Option<String>,
}

/// The messages a batch's events INSERT queues: for each event it wrote (`row_of` gives
/// its row: the new id, or before the ids are known its stored key; None for a
/// redelivery; an event whose row was already seen is the same delivery twice in one
/// batch), its messages, in the order events came in, so message ids follow it.
/// PostgreSQL inserts exactly these; SQLite's batch writer applies the same rule event by
/// event (`sqlite/commit.rs`).
pub(crate) fn messages_to_queue<'e, K: Eq + std::hash::Hash + Clone>(
    events: &'e [NewEvent],
    row_of: impl Fn(&'e NewEvent) -> Option<K>,
) -> Vec<(K, &'e NewMessage)> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter_map(|ev| {
            row_of(ev)
                .filter(|row| seen.insert(row.clone()))
                .map(|row| (row, ev))
        })
        .flat_map(|(row, ev)| ev.messages.iter().map(move |m| (row.clone(), m)))
        .collect()
}

/// The outbox statuses an operator lists by (`pending` includes messages being sent), or
/// `all` (None), as a `list_messages` filter.
pub fn status_filter(s: Option<&str>) -> Result<Option<&'static str>, String> {
    match s {
        None | Some("all") => Ok(None),
        Some("pending") => Ok(Some("pending")),
        Some("dead") => Ok(Some("dead")),
        Some("delivered") => Ok(Some("delivered")),
        Some("dropped") => Ok(Some("dropped")),
        Some(other) => Err(format!(
            "unknown status {other:?} (pending, dead, delivered, dropped, all)"
        )),
    }
}

/// Which messages to list, newest first: each filter that is set must hold. `before`
/// pages back (keyset: only ids below it), so a page costs the same at any depth.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// From [`status_filter`]; None: any.
    pub status: Option<&'static str>,
    pub route: Option<String>,
    pub source: Option<String>,
    pub chat: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Messages delivered and messages that went dead, counted per period back from `now`
/// (`delivered[0]`: the most recent period).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Activity {
    pub delivered: Vec<i64>,
    pub dead: Vec<i64>,
}

/// How a message reaches Roam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageOp {
    /// `chat.post` the request.
    #[default]
    Post,
    /// The first message about an entity is posted (sync, to learn its timestamp);
    /// later ones edit it in place with `chat.update` (and reply in its thread if the
    /// request has a `threadKey`).
    Upsert,
}

impl MessageOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageOp::Post => "post",
            MessageOp::Upsert => "upsert",
        }
    }

    pub(crate) fn parse(s: &str) -> MessageOp {
        if s == "upsert" {
            MessageOp::Upsert
        } else {
            MessageOp::Post
        }
    }
}

/// What committing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Inserted {
        event_id: i64,
        messages: usize,
        /// Items waiting in groups (`grouping`).
        held: usize,
    },
    /// Same (source, delivery_id) seen before: nothing written. The routes it matched then.
    Duplicate { routes: Vec<String> },
}

/// A message due for delivery.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub chat: String,
    pub route: String,
    /// The chat.post body; empty until rendered when `render` is set.
    pub request: String,
    /// What to render before sending (see [`NewMessage::render`]).
    pub render: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub maybe_duplicate: bool,
    pub op: MessageOp,
    pub entity_key: Option<String>,
    /// The event it came from, for the log.
    pub source: String,
    pub delivery_id: String,
}

/// The body of a message rendered as it is sent, and what failed in its template.
#[derive(Debug, Clone, Copy)]
pub struct RenderedBody<'a> {
    pub request: &'a str,
    pub render_error: Option<&'a str>,
}

/// The Roam message posted for an entity: what a later `chat.update` edits.
#[derive(Debug, Clone, Copy)]
pub struct EntityMessage<'a> {
    pub entity_key: &'a str,
    pub chat: &'a str,
    /// Roam's message timestamp (µs).
    pub timestamp: i64,
}

/// A message as the operator sees it (`roam-notify outbox`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MessageRecord {
    pub id: i64,
    pub status: String,
    pub chat: String,
    pub route: String,
    pub event: String,
    pub source: String,
    pub delivery_id: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub render_error: Option<String>,
    pub maybe_duplicate: bool,
    /// The chat.post body; empty until it is sent when `render` is set.
    pub request: String,
    /// What is rendered when it is sent (see [`NewMessage::render`]).
    pub render: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutboxStats {
    pub pending: i64,
    pub dead: i64,
    pub delivered: i64,
    /// Age of the oldest message not yet delivered, in seconds.
    pub oldest_pending_age_seconds: Option<f64>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One event's contribution to a group on a held route.
#[derive(Debug, Clone)]
pub struct HeldItem {
    pub route: String,
    /// The group within the route (the `group_by` values).
    pub key: String,
    /// The route's grouping settings (JSON `grouping::GroupSpec`), stored with the group.
    pub spec: String,
    pub fingerprint: String,
    /// JSON `grouping::Item`.
    pub item: String,
    /// A new group waits this long for more events before its first message.
    pub wait_ms: i64,
    /// A group that has sent waits this long before its next message.
    pub interval_ms: i64,
    /// Send the group at this time regardless (a resolved alert: now; a mute window: its end).
    pub flush_at: Option<i64>,
}

/// A group whose time has come.
#[derive(Debug, Clone)]
pub struct DueGroup {
    pub id: i64,
    pub route: String,
    pub key: String,
    pub spec: String,
}

#[derive(Debug, Clone)]
pub struct StoredItem {
    pub id: i64,
    pub group_id: i64,
    pub event_id: i64,
    pub fingerprint: String,
    pub item: String,
}

/// What sending some groups wrote: applied in one transaction.
#[derive(Debug, Clone)]
pub struct GroupFlush {
    pub route: String,
    pub group_ids: Vec<i64>,
    /// Items up to this id were read and are consumed; later ones stay for the next message.
    pub upto_item_id: i64,
    /// How many items that is: if fewer are left to consume, another flush took them and
    /// this one is not applied.
    pub items: u64,
    /// (event id the message is filed under, message).
    pub messages: Vec<(i64, NewMessage)>,
    /// Fingerprints sent now (for `repeat_interval`).
    pub fingerprints: Vec<String>,
    /// The route's `max_messages` window after this flush: (start, messages sent in it).
    pub window: Option<(i64, i64)>,
    pub interval_ms: i64,
}

/// A silence as stored (`roam-notify silence add`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Silence {
    pub id: i64,
    /// JSON: `routing::silence::Matcher`.
    pub matcher: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub comment: String,
    pub created_by: String,
    pub created_at: i64,
    pub expired: bool,
}

/// Schema versions whose SQL is the same on both backends, applied in order after each
/// backend's own (SQLite 1-4, PostgreSQL 4). Version 7 is SQLite's own (its old enqueue
/// trigger dropped); PostgreSQL has no 7.
pub(crate) const SHARED_SCHEMA: &[(i64, &str)] = &[
    (5, include_str!("schema_v5.sql")),
    (6, include_str!("schema_v6.sql")),
    (8, include_str!("schema_v8.sql")),
];

/// A row of the directory cache: what a chat name or an email stands for in Roam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// `chat` (key: the chat id) or `user` (key: the email, lowercase).
    pub kind: String,
    pub key: String,
    pub id: String,
    /// A chat's name; a user's email.
    pub label: String,
    /// A channel's group id.
    pub group: Option<String>,
    /// `channel`, `dm`, `multi-dm` (chats).
    pub chat_kind: Option<String>,
    /// When Roam last confirmed it (unix ms).
    pub seen_at: i64,
}

/// A transcript announced by webhook, not yet turned into an event.
#[derive(Debug, Clone)]
pub struct QueuedTranscript {
    pub id: String,
    pub attempts: i64,
}

/// Settings only a shared (PostgreSQL) store uses.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaSettings {
    /// How long a claim on a message (and a send in progress) is honoured. A replica that
    /// dies mid-send releases its messages when this runs out; it must be longer than the
    /// longest send (see `config::Config::validate`).
    pub lease: Duration,
}

impl Default for ReplicaSettings {
    fn default() -> ReplicaSettings {
        ReplicaSettings {
            lease: Duration::from_secs(60),
        }
    }
}

#[derive(Clone)]
enum Engine {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// The one storage API the daemon uses: the methods of [`Backend`] (see `contract.rs`)
/// plus opening, closing and the replica helpers below.
#[derive(Clone)]
pub struct Store {
    backend: Engine,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.backend {
            Engine::Sqlite(_) => "Store(sqlite)",
            Engine::Postgres(_) => "Store(postgres)",
        })
    }
}

/// Separates the parts of composite keys that are stored (entity keys, group keys):
/// the ASCII unit separator, since PostgreSQL text cannot hold NUL.
pub const KEY_SEP: char = '\u{1f}';

/// Whether a storage URL names PostgreSQL (`postgres://`, `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Opens (creating if needed) and migrates the store the URL names.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, ReplicaSettings::default()).await
    }

    pub async fn open_with(url: &str, replica: ReplicaSettings) -> Result<Store, StoreError> {
        let backend = if is_postgres_url(url) {
            Engine::Postgres(PgStore::open(url, replica).await?)
        } else {
            Engine::Sqlite(SqliteStore::open(url).await?)
        };
        Ok(Store { backend })
    }

    /// True when several replicas may share this store (PostgreSQL): then other
    /// processes' commits do not wake this one's workers, so they poll.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Engine::Postgres(_))
    }

    /// This process's name in claims and leases.
    pub fn replica_id(&self) -> &str {
        match &self.backend {
            Engine::Sqlite(_) => "local",
            Engine::Postgres(p) => p.replica_id(),
        }
    }

    /// Takes one token from the Roam rate limit every replica shares. `None`: taken, or
    /// the store is not shared (the caller's own bucket applies); `Some(wait)`: none left
    /// (or all sending is paused) for about that long.
    pub async fn take_roam_token(
        &self,
        rate_per_second: f64,
        burst: f64,
    ) -> Result<Option<Duration>, StoreError> {
        match &self.backend {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(p) => p.take_roam_token(rate_per_second, burst).await,
        }
    }

    /// Pauses every replica's sending for `d` (a 429 seen by one is honoured by all).
    pub async fn pause_roam(&self, d: Duration) -> Result<(), StoreError> {
        match &self.backend {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(p) => p.pause_roam(d).await,
        }
    }

    pub async fn close(&self) {
        match &self.backend {
            Engine::Sqlite(s) => s.close().await,
            Engine::Postgres(p) => p.close().await,
        }
    }
}
