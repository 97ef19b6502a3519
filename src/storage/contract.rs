//! The storage contract: every method a backend (SQLite, PostgreSQL) must have, with
//! what it guarantees. `Store` exposes exactly these (plus opening and closing).

use std::time::Duration;

use super::*;

/// From the one list below: the [`Backend`] trait, its implementation by each backend
/// (each method is the backend's own method of that name: one it lacks is a compile
/// error here), and `Store`'s methods, which call the backend in use.
macro_rules! contract {
    ($( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        /// What a storage backend provides. Every method is one statement or one
        /// transaction: atomic, and durable when it returns.
        pub trait Backend: Send + Sync {
            $(
                $(#[$m])*
                fn $name(&self $(, $arg: $ty)*) -> impl Future<Output = Result<$ret, StoreError>> + Send;
            )*
        }

        contract!(@implement SqliteStore, sqlite_methods; $( fn $name(&self $(, $arg: $ty)*) -> $ret; )*);
        contract!(@implement PgStore, pg_methods; $( fn $name(&self $(, $arg: $ty)*) -> $ret; )*);

        impl Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    match &self.backend {
                        Engine::Sqlite(s) => Backend::$name(s $(, $arg)*).await,
                        Engine::Postgres(p) => Backend::$name(p $(, $arg)*).await,
                    }
                }
            )*
        }
    };
    (@implement $store:ident, $methods:ident; $( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        /// The backend's own methods. `Backend` is not in scope here, so a method the
        /// backend lacks is "no method named … found for `&SqliteStore`", naming it.
        mod $methods {
            use std::time::Duration;

            use super::$store;
            use crate::storage::{
                Activity, Committed, DirEntry, DueGroup, EntityMessage, GroupFlush, MessageQuery,
                MessageRecord, NewEvent,
                OutboxMessage, OutboxStats, QueuedTranscript, RenderedBody, Silence, StoreError,
                StoredItem,
            };

            $(
                pub(super) fn $name(s: &$store $(, $arg: $ty)*) -> impl Future<Output = Result<$ret, StoreError>> + Send {
                    s.$name($($arg),*)
                }
            )*
        }

        impl Backend for $store {
            $(
                fn $name(&self $(, $arg: $ty)*) -> impl Future<Output = Result<$ret, StoreError>> + Send {
                    $methods::$name(self $(, $arg)*)
                }
            )*
        }
    };
}

contract! {
    /// Records a batch of events and queues their messages and held items, in one
    /// transaction. Returns, per event, whether it was new or a duplicate.
    fn commit_events(&self, events: &[NewEvent]) -> Vec<Committed>;

    /// At start-up: messages whose send may have been cut short go back to pending,
    /// flagged, because Roam may or may not have received them. SQLite: every message
    /// marked sending. PostgreSQL: only claims whose lease ran out (other replicas'
    /// live sends are theirs).
    fn recover_in_flight(&self) -> Vec<i64>;

    /// The oldest unsent message of each chat, if it is due, claimed for this process.
    /// Later messages of a chat wait for the earlier ones, so each chat sees its messages
    /// in order. PostgreSQL: rows are locked with `FOR UPDATE SKIP LOCKED` and claimed with
    /// a lease, so replicas never take the same message; an expired claim is taken over.
    fn claim_due(&self, now: i64, limit: i64) -> Vec<OutboxMessage>;

    /// Claimed messages this process will not send after all (shutdown, a 429) go back.
    fn release_claims(&self, ids: &[i64]) -> ();

    /// When the next head-of-chat message becomes due (unix ms), if any.
    fn next_due_at(&self) -> Option<i64>;

    /// Marks a claimed message as being sent (counts an attempt). False when the claim
    /// was lost (it expired and another replica took the message): do not send it.
    /// `rendered`: the body of a message rendered now (its `render` is cleared), stored
    /// in the same update, so a retry or a restart sends this same body.
    fn mark_sending(&self, id: i64, rendered: Option<RenderedBody<'_>>) -> bool;

    /// Marks a message delivered; `posted` records the Roam message that now stands for
    /// its entity (an upsert's first post), in the same transaction.
    fn mark_delivered(&self, id: i64, posted: Option<EntityMessage<'_>>) -> ();

    /// The Roam message (timestamp) that stands for an entity, if one was posted.
    fn entity_message(&self, entity_key: &str) -> Option<i64>;

    /// Back to pending, due at `next_at`. `count_attempt = false` for waits that are not
    /// the message's fault (429, an unauthorized key): they do not use up its retries.
    fn retry_later(&self, id: i64, next_at: i64, error: &str, count_attempt: bool) -> ();

    fn mark_dead(&self, id: i64, error: &str) -> ();

    /// Messages as `q` says, newest first (`pending` includes those claimed and being
    /// sent).
    fn list_messages(&self, q: &MessageQuery) -> Vec<MessageRecord>;

    fn get_message(&self, id: i64) -> Option<MessageRecord>;

    /// Puts a dead (or dropped) message back in the queue, due now, with fresh retries.
    /// Returns false when there is no such message in a state that can be retried.
    fn requeue(&self, id: i64) -> bool;

    /// Every dead message back in the queue; returns how many.
    fn requeue_all_dead(&self) -> u64;

    /// Gives up on a pending or dead message: it is kept, marked `dropped`, never sent.
    fn drop_message(&self, id: i64) -> bool;

    /// Deletes delivered and dropped messages, and events with no message left, that are
    /// older than `cutoff_ms`, in small batches so no write waits long. Dead and pending
    /// messages are kept. An event's delivery id is remembered (deduplicated) until then.
    /// Returns (messages, events) deleted.
    fn prune(&self, cutoff_ms: i64) -> (u64, u64);

    fn stats(&self) -> OutboxStats;

    /// Deliveries and dead letters in `periods` periods of `period_ms` back from `now`
    /// (a dead letter counts when its last attempt was due).
    fn activity(&self, now: i64, period_ms: i64, periods: i64) -> Activity;

    /// Groups due at `now`, by route.
    fn due_groups(&self, now: i64, limit: i64) -> Vec<DueGroup>;

    /// When the next group is due (unix ms).
    fn next_group_due(&self) -> Option<i64>;

    /// Items pending in these groups, oldest first.
    fn group_items(&self, group_ids: &[i64]) -> Vec<StoredItem>;

    /// Items pending per route (for `/readyz`).
    fn held_counts(&self) -> Vec<(String, i64)>;

    /// Fingerprints this route sent at or after `since`.
    fn sent_fingerprints(&self, route: &str, since: i64) -> std::collections::HashSet<String>;

    /// The route's `max_messages` window: (start, messages sent in it).
    fn route_window(&self, route: &str) -> Option<(i64, i64)>;

    /// Queues a group's message and consumes its items, atomically: a crash before this
    /// commits sends nothing and keeps the items; after it, the message is in the outbox.
    /// False (and nothing written) when some of the items were consumed meanwhile by
    /// another flush: the group was sent by someone else.
    fn apply_flush(&self, f: &GroupFlush) -> bool;

    /// Moves the pending items of `group_ids` into the route's group `key` (created with
    /// `spec` if needed), due at `flush_at` at the latest: the `max_messages` overflow digest.
    fn merge_groups(&self, route: &str, key: &str, spec: &str, group_ids: &[i64], flush_at: i64) -> ();

    /// Takes a group off the schedule (its items stay).
    fn park_group(&self, id: i64) -> ();

    fn add_silence(&self, matcher: &str, starts_at: i64, ends_at: i64, comment: &str, created_by: &str) -> i64;

    /// Silences not yet over (and, with `all`, the expired ones too), newest first.
    fn list_silences(&self, all: bool) -> Vec<Silence>;

    /// Ends a silence now. False when there is no such active silence.
    fn expire_silence(&self, id: i64) -> bool;

    /// Queues a transcript id (a repeated announcement is one row). True if new.
    fn enqueue_transcript(&self, id: &str) -> bool;

    fn queued_transcripts(&self) -> Vec<QueuedTranscript>;

    fn dequeue_transcript(&self, id: &str) -> ();

    fn transcript_failed(&self, id: &str, error: &str) -> ();

    /// Whether an event with this delivery id was committed for the source.
    fn has_event(&self, source: &str, delivery_id: &str) -> bool;

    fn transcript_state(&self, key: &str) -> Option<String>;

    fn set_transcript_state(&self, pairs: &[(&str, String)]) -> ();

    /// The whole directory cache (chat names, user emails).
    fn directory(&self) -> Vec<DirEntry>;

    /// Adds or updates directory rows (by kind and key), in one transaction.
    fn put_directory(&self, entries: &[DirEntry]) -> ();

    /// A cached enrichment answer and when it was fetched (unix ms).
    fn cached(&self, key: &str) -> Option<(String, i64)>;

    /// Stores (or replaces) a cached enrichment answer.
    fn put_cached(&self, key: &str, value: &str, fetched_at: i64) -> ();

    /// Takes or renews the lease `name` for `holder` for `ttl`. True while `holder` holds
    /// it. Background work that must run on one replica at a time (the group flusher, the
    /// transcript queue, pruning) runs only while its replica holds the lease.
    fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> bool;

    /// Claims the scheduled run `tick` (unix ms) of job `name`: true for the first replica
    /// to ask, false for every later one, so each scheduled run happens exactly once. A
    /// claim whose replica died unfinished can be taken again after ten minutes.
    fn claim_tick(&self, name: &str, tick: i64) -> bool;

    /// Gives back a claimed run that was interrupted (shutdown), so it can run again.
    fn release_tick(&self, name: &str, tick: i64) -> ();
}
