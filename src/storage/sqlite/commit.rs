//! SQLite: writing a batch of accepted events, and making it durable.
//!
//! Batches have a connection of their own, [`BatchWriter`] (rusqlite), used on the
//! thread that writes: the committer's writer thread. Every statement is a direct call
//! into SQLite, prepared once and cached. Through sqlx each statement was a hop to its
//! connection's worker thread and back, and each row returned another hop, with the
//! futex calls and context switches they cost (docs/performance.md).
//!
//! The batch is one transaction; per event, in the order they came: its row (`ON
//! CONFLICT DO NOTHING` finds a redelivery, or the same delivery twice in the batch),
//! then its messages (so message ids follow the events' order), then its held items.
//!
//! Durability is split from writing: the batch connection runs with `synchronous =
//! NORMAL` (in WAL mode a commit is written to the WAL, not yet flushed), and
//! `sync_blocking` flushes the WAL with `fdatasync` before anyone is answered (SQLite's
//! own `FULL` would call `fsync`, which also writes the file's metadata). Every other
//! write goes through sqlx's writer connection with `synchronous = FULL`, so it also
//! flushes whatever the WAL holds before it: a message is marked `sending` (flushed)
//! before it is sent, so nothing that is not yet durable can reach Roam.
//!
//! Two connections write, so one may find the other holding the write lock: the batch
//! connection then waits in steps of 100 µs (SQLite's own busy handler sleeps 1, 2, 5 …
//! 100 ms, which an acknowledgement waiting behind a delivery update would feel).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::storage::{Committed, HeldItem, NewEvent, NewMessage, StoreError, now_ms};

const INSERT_EVENT: &str =
    "INSERT INTO events (source, delivery_id, name, entity, routes, received_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id";

const ROUTES_OF: &str = "SELECT routes FROM events WHERE source = ?1 AND delivery_id = ?2";

const INSERT_MESSAGE: &str = "INSERT INTO messages (event_id, route, chat, request, status,
     created_at, next_attempt_at, render_error, op, entity_key, render)
     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?6, ?7, ?8, ?9)";

/// A held item's group: made, or its flush time brought forward (a new group waits
/// `wait`, one that has sent waits `interval` after its last flush, `flush_at` overrides).
const UPSERT_GROUP: &str = "INSERT INTO groups (route, key, spec, flush_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (route, key) DO UPDATE SET spec = excluded.spec,
       flush_at = CASE
         WHEN ?5 IS NOT NULL THEN COALESCE(MIN(groups.flush_at, ?5), ?5)
         WHEN groups.flush_at IS NOT NULL THEN groups.flush_at
         WHEN groups.last_flush_at IS NULL THEN ?6 + ?7
         ELSE MAX(?6, groups.last_flush_at + ?8) END
     RETURNING id";

const INSERT_ITEM: &str =
    "INSERT INTO group_items (group_id, event_id, fingerprint, item, received_at)
     VALUES (?1, ?2, ?3, ?4, ?5)";

/// About 10 s of 100 µs waits for the write lock before the batch fails (503, retried).
const LOCK_WAITS: i32 = 100_000;

fn wait_for_lock(tries: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    tries < LOCK_WAITS
}

/// The connection that writes accepted batches (one per store; see the module's notes).
pub(super) struct BatchWriter {
    conn: Connection,
}

impl BatchWriter {
    /// Opens the (already migrated) database file.
    pub(super) fn open(path: &Path) -> rusqlite::Result<BatchWriter> {
        let conn = Connection::open(path)?;
        conn.busy_handler(Some(wait_for_lock))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON")?;
        Ok(BatchWriter { conn })
    }

    /// Writes the batch in one transaction: per event, whether it was new or a duplicate.
    fn write(&mut self, events: &[NewEvent], now: i64) -> rusqlite::Result<Vec<Committed>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(events.len());
        {
            let mut insert_event = tx.prepare_cached(INSERT_EVENT)?;
            let mut routes_of = tx.prepare_cached(ROUTES_OF)?;
            let mut insert_message = tx.prepare_cached(INSERT_MESSAGE)?;
            for ev in events {
                let routes = serde_json::to_string(&ev.routes).unwrap_or_else(|_| "[]".into());
                let id: Option<i64> = insert_event
                    .query_row(
                        params![ev.source, ev.delivery_id, ev.name, ev.entity, routes, now],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(event_id) = id else {
                    let prev: Option<String> = routes_of
                        .query_row(params![ev.source, ev.delivery_id], |r| r.get(0))
                        .optional()?;
                    let routes = prev
                        .and_then(|r: String| serde_json::from_str(&r).ok())
                        .unwrap_or_default();
                    out.push(Committed::Duplicate { routes });
                    continue;
                };
                for m in &ev.messages {
                    insert(&mut insert_message, event_id, m, now)?;
                }
                for h in &ev.held {
                    hold(&tx, event_id, h, now)?;
                }
                out.push(Committed::Inserted {
                    event_id,
                    messages: ev.messages.len(),
                    held: ev.held.len(),
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }
}

fn insert(
    stmt: &mut rusqlite::CachedStatement<'_>,
    event_id: i64,
    m: &NewMessage,
    now: i64,
) -> rusqlite::Result<()> {
    stmt.execute(params![
        event_id,
        m.route,
        m.chat,
        m.request,
        now,
        m.render_error,
        m.op.as_str(),
        m.entity_key,
        m.render
    ])?;
    Ok(())
}

fn hold(tx: &Connection, event_id: i64, h: &HeldItem, now: i64) -> rusqlite::Result<()> {
    let group_id: i64 = tx.prepare_cached(UPSERT_GROUP)?.query_row(
        params![
            h.route,
            h.key,
            h.spec,
            h.flush_at.unwrap_or(now.saturating_add(h.wait_ms)),
            h.flush_at,
            now,
            h.wait_ms,
            h.interval_ms
        ],
        |r| r.get(0),
    )?;
    tx.prepare_cached(INSERT_ITEM)?.execute(params![
        group_id,
        event_id,
        h.fingerprint,
        h.item,
        now
    ])?;
    Ok(())
}

impl SqliteStore {
    /// Records a batch of events and queues their messages, durable when it returns
    /// (both halves on a blocking thread; the committer's writer thread calls them
    /// itself).
    pub async fn commit_events(&self, events: &[NewEvent]) -> Result<Vec<Committed>, StoreError> {
        let (store, events) = (self.clone(), events.to_vec());
        tokio::task::spawn_blocking(move || {
            let out = store.write_events_blocking(&events)?;
            store.sync_blocking()?;
            Ok(out)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Records a batch of events in one transaction, on the calling thread, which it
    /// blocks. Visible at once, durable after the next
    /// [`sync_blocking`](Self::sync_blocking). Returns, per event, whether it was new or
    /// a duplicate.
    pub fn write_events_blocking(&self, events: &[NewEvent]) -> Result<Vec<Committed>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // A panic inside `write` dropped its transaction, which rolled back: the
        // connection is still sound.
        let mut batch = self
            .batch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(batch.write(events, now_ms())?)
    }

    /// Flushes what [`write_events_blocking`](Self::write_events_blocking) wrote to the
    /// disk: one `fdatasync` of the WAL, on the calling thread, which it blocks.
    pub fn sync_blocking(&self) -> Result<(), StoreError> {
        flush(&self.wal).map_err(|source| StoreError::Sync {
            path: self.wal.display().to_string(),
            source,
        })
    }
}

/// Flushes the WAL. Opened afresh each time: SQLite may delete and recreate the file
/// (when its last connection closes), and a kept descriptor would flush the old one. A
/// WAL that is not there holds nothing: SQLite checkpoints (and syncs the database)
/// before it deletes it.
fn flush(wal: &Path) -> std::io::Result<()> {
    match std::fs::File::open(wal) {
        Ok(f) => f.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::ev;

    /// An event with one message, to chat C.
    fn one(id: &str) -> NewEvent {
        ev(id, &["C"])
    }

    /// A store in a fresh file: the directory (kept alive), the URL, the store.
    async fn temp_store() -> (tempfile::TempDir, String, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let s = SqliteStore::open(&url).await.unwrap();
        (dir, url, s)
    }

    async fn scalar(s: &SqliteStore, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&s.writer)
            .await
            .unwrap()
    }

    async fn count(s: &SqliteStore, table: &str) -> i64 {
        scalar(s, &format!("SELECT COUNT(*) FROM {table}")).await
    }

    #[tokio::test]
    async fn a_batch_is_all_or_nothing_and_other_writes_stay_at_full_sync() {
        let (dir, _, s) = temp_store().await;
        let out = s
            .commit_events(&[one("a"), one("b"), one("a")])
            .await
            .unwrap();
        assert!(matches!(out[0], Committed::Inserted { messages: 1, .. }));
        assert!(matches!(out[2], Committed::Duplicate { .. }));
        assert_eq!(count(&s, "messages").await, 2, "one message per new event");
        assert!(dir.path().join("t.db-wal").exists());
        // Every write but the batches' flushes the WAL as it commits.
        assert_eq!(scalar(&s, "PRAGMA synchronous").await, 2, "FULL");

        // A batch that fails half way leaves nothing behind.
        sqlx::raw_sql("ALTER TABLE messages RENAME TO gone")
            .execute(&s.writer)
            .await
            .unwrap();
        let err = s.commit_events(&[one("c")]).await.unwrap_err();
        assert!(err.to_string().contains("messages"), "{err}");
        assert_eq!(
            count(&s, "events").await,
            2,
            "the failed batch's event rolled back"
        );
    }

    #[tokio::test]
    async fn each_message_belongs_to_its_own_event_around_duplicates() {
        let (_dir, _, s) = temp_store().await;
        s.commit_events(&[one("a")]).await.unwrap();
        // A redelivery between new events, and one repeated within the batch.
        let batch = [ev("b", &["C", "D"]), one("a"), one("c"), one("b")];
        let out = s.commit_events(&batch).await.unwrap();
        let ids: Vec<Option<i64>> = out
            .iter()
            .map(|c| match c {
                Committed::Inserted { event_id, .. } => Some(*event_id),
                Committed::Duplicate { .. } => None,
            })
            .collect();
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, delivery_id FROM events")
            .fetch_all(&s.writer)
            .await
            .unwrap();
        let id_of = |d: &str| rows.iter().find(|r| r.1 == d).map(|r| r.0);
        assert_eq!(ids, [id_of("b"), None, id_of("c"), None]);
        // Every message names the event whose delivery it came from (its text).
        let linked: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.delivery_id, m.request ->> '$.text' FROM messages m
             JOIN events e ON e.id = m.event_id ORDER BY m.id",
        )
        .fetch_all(&s.writer)
        .await
        .unwrap();
        let pairs: Vec<(&str, &str)> = linked
            .iter()
            .map(|(e, t)| (e.as_str(), t.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "a"), ("b", "b"), ("b", "b"), ("c", "c")]);
    }

    #[tokio::test]
    async fn a_batch_waits_for_a_write_lock_another_connection_holds() {
        let (_dir, _, s) = temp_store().await;
        let mut tx = s.writer.begin().await.unwrap();
        sqlx::query("DELETE FROM events")
            .execute(&mut *tx)
            .await
            .unwrap();
        let writing = tokio::spawn({
            let s = s.clone();
            async move { s.commit_events(&[one("a")]).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!writing.is_finished(), "the batch waits for the lock");
        tx.commit().await.unwrap();
        let out = writing.await.unwrap().unwrap();
        assert!(matches!(out[0], Committed::Inserted { .. }));
    }

    #[tokio::test]
    async fn the_old_enqueue_trigger_is_gone() {
        let (_dir, url, s) = temp_store().await;
        let triggers = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'";
        assert_eq!(scalar(&s, triggers).await, 0);
        assert_eq!(
            scalar(&s, "SELECT MAX(version) FROM schema_version").await,
            8
        );
        s.close().await;
        // Opening again applies nothing twice.
        let s = SqliteStore::open(&url).await.unwrap();
        assert_eq!(
            scalar(&s, "SELECT COUNT(*) FROM schema_version WHERE version = 7").await,
            1
        );
    }

    #[tokio::test]
    async fn a_missing_wal_has_nothing_to_flush() {
        let dir = tempfile::tempdir().unwrap();
        assert!(flush(&dir.path().join("none.db-wal")).is_ok());
    }
}
