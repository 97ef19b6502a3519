//! SQLite: writing a batch of accepted events, and making it durable.
//!
//! The batch is one transaction: the events (`ON CONFLICT DO NOTHING` finds redeliveries),
//! then the messages of the events it wrote, then their held items. Each is one
//! multi-row statement per 1,000 rows, so a batch of hundreds of webhooks costs a handful
//! of round trips to SQLite's thread.
//!
//! Durability is split from writing so that the committer can write the next batch while
//! the disk flushes this one (`committer.rs`): `write_events` commits with
//! `synchronous = NORMAL` (in WAL mode: written to the WAL, not yet flushed), and `sync`
//! flushes the WAL with `fdatasync` on a blocking thread. One flush covers every batch
//! written before it started, since the WAL is a single file appended in commit order.
//! Every other write keeps `synchronous = FULL` and so also flushes whatever the WAL holds
//! before it: a message is marked `sending` (flushed) before it is sent, so nothing that
//! is not yet durable can reach Roam.

use std::collections::HashMap;
use std::path::Path;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::Sqlite;
use sqlx::{QueryBuilder, Row, SqliteConnection};

use super::{SqliteStore, groups};
use crate::storage::{Committed, NewEvent, NewMessage, StoreError, messages_to_queue, now_ms};

/// SQLite allows 32,766 bound values per statement; an event row binds 6, a message 9.
const ROWS_PER_STATEMENT: usize = 1000;

impl SqliteStore {
    /// Records a batch of events and queues their messages, durable when it returns.
    pub async fn commit_events(&self, events: &[NewEvent]) -> Result<Vec<Committed>, StoreError> {
        let out = self.write_events(events).await?;
        self.sync().await?;
        Ok(out)
    }

    /// Records a batch of events in one transaction, visible at once and durable after
    /// the next [`sync`](Self::sync). Returns, per event, whether it was new or a
    /// duplicate.
    pub async fn write_events(&self, events: &[NewEvent]) -> Result<Vec<Committed>, StoreError> {
        let now = now_ms();
        let mut conn = self.writer.acquire().await?;
        let written = write_batch(&mut conn, events, now).await;
        if written.is_err() {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            restore_full_sync(&mut conn).await;
        }
        let mut inserted = written?;
        drop(conn);
        self.outcomes(events, |ev| {
            inserted.remove(&(ev.source.as_str(), ev.delivery_id.as_str()))
        })
        .await
    }

    /// Flushes what [`write_events`](Self::write_events) wrote to the disk: one
    /// `fdatasync` of the WAL. An in-memory database has nothing to flush.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.sync_blocking())
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// [`sync`](Self::sync) on the calling thread, which it blocks.
    pub fn sync_blocking(&self) -> Result<(), StoreError> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        flush(wal).map_err(|source| StoreError::Sync {
            path: wal.display().to_string(),
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

/// After a failed batch: every other write relies on `synchronous = FULL`; a connection
/// that cannot be set back is closed rather than reused.
async fn restore_full_sync(conn: &mut PoolConnection<Sqlite>) {
    if let Err(e) = sqlx::raw_sql("PRAGMA synchronous = FULL")
        .execute(&mut **conn)
        .await
    {
        tracing::error!(error = %e, "cannot restore synchronous = FULL; reopening the writer connection");
        conn.close_on_drop();
    }
}

/// (source, delivery id) of each event the batch wrote, and its new row id.
type Inserted<'a> = HashMap<(&'a str, &'a str), i64>;

/// The safety level cannot change inside a transaction: it is set before BEGIN and after
/// COMMIT. Both ride along with the batch's first and last INSERT (sqlx runs a query's
/// statements in order, in one round trip to SQLite's thread), so a usual batch costs two
/// round trips: the events, then the messages.
const BEGIN: &str = "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE; ";
const COMMIT: &str = "COMMIT; PRAGMA synchronous = FULL";

async fn write_batch<'a>(
    conn: &mut SqliteConnection,
    events: &'a [NewEvent],
    now: i64,
) -> Result<Inserted<'a>, sqlx::Error> {
    if events.is_empty() {
        return Ok(HashMap::new());
    }
    let inserted = insert_events(conn, events, now).await?;
    let queue = messages_to_queue(events, |ev| {
        inserted
            .get(&(ev.source.as_str(), ev.delivery_id.as_str()))
            .copied()
    });
    let held = events.iter().any(|e| !e.held.is_empty());
    let chunks: Vec<_> = queue.chunks(ROWS_PER_STATEMENT).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len() && !held;
        insert_messages(conn, chunk, now, last).await?;
    }
    if held || chunks.is_empty() {
        if held {
            groups::insert_held(conn, events, &inserted, now).await?;
        }
        sqlx::raw_sql(COMMIT).execute(&mut *conn).await?;
    }
    Ok(inserted)
}

async fn insert_events<'a>(
    conn: &mut SqliteConnection,
    events: &'a [NewEvent],
    now: i64,
) -> Result<Inserted<'a>, sqlx::Error> {
    // Looked up by the event's own strings: what the INSERT returns is the same text.
    let by_key: HashMap<(&str, &str), &'a NewEvent> = events
        .iter()
        .map(|e| ((e.source.as_str(), e.delivery_id.as_str()), e))
        .collect();
    let mut inserted = HashMap::with_capacity(events.len());
    for (i, chunk) in events.chunks(ROWS_PER_STATEMENT).enumerate() {
        let begin = if i == 0 { BEGIN } else { "" };
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "{begin}INSERT INTO events (source, delivery_id, name, entity, routes, received_at) "
        ));
        q.push_values(chunk, |mut row, ev| {
            row.push_bind(&ev.source)
                .push_bind(&ev.delivery_id)
                .push_bind(&ev.name)
                .push_bind(&ev.entity)
                .push_bind(serde_json::to_string(&ev.routes).unwrap_or_else(|_| "[]".into()))
                .push_bind(now);
        });
        q.push(" ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id");
        for row in q.build().fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get(0)?;
            let source: &str = row.try_get(1)?;
            let delivery: &str = row.try_get(2)?;
            if let Some(ev) = by_key.get(&(source, delivery)) {
                inserted.insert((ev.source.as_str(), ev.delivery_id.as_str()), id);
            }
        }
    }
    Ok(inserted)
}

/// One multi-row INSERT; the batch's last one carries the COMMIT.
async fn insert_messages(
    conn: &mut SqliteConnection,
    rows: &[(i64, &NewMessage)],
    now: i64,
    commit: bool,
) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO messages (event_id, route, chat, request, status, created_at, next_attempt_at, \
         render_error, op, entity_key) ",
    );
    q.push_values(rows, |mut row, (event_id, m)| {
        row.push_bind(*event_id)
            .push_bind(&m.route)
            .push_bind(&m.chat)
            .push_bind(&m.request)
            .push("'pending'")
            .push_bind(now)
            .push_bind(now)
            .push_bind(&m.render_error)
            .push_bind(m.op.as_str())
            .push_bind(&m.entity_key);
    });
    if commit {
        q.push("; ").push(COMMIT);
    }
    q.build().execute(&mut *conn).await?;
    Ok(())
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

    async fn synchronous(s: &SqliteStore) -> i64 {
        scalar(s, "PRAGMA synchronous").await
    }

    async fn count(s: &SqliteStore, table: &str) -> i64 {
        scalar(s, &format!("SELECT COUNT(*) FROM {table}")).await
    }

    #[tokio::test]
    async fn a_batch_leaves_the_writer_at_full_sync_whether_it_is_written_or_not() {
        let (dir, _, s) = temp_store().await;
        assert_eq!(synchronous(&s).await, 2, "FULL from the start");

        let out = s
            .write_events(&[one("a"), one("b"), one("a")])
            .await
            .unwrap();
        assert!(matches!(out[0], Committed::Inserted { messages: 1, .. }));
        assert!(matches!(out[2], Committed::Duplicate { .. }));
        assert_eq!(count(&s, "messages").await, 2, "one message per new event");
        assert_eq!(synchronous(&s).await, 2, "FULL again after the batch");
        assert!(dir.path().join("t.db-wal").exists());
        s.sync().await.unwrap();

        // A batch that fails half way leaves nothing behind, and FULL too.
        sqlx::raw_sql("ALTER TABLE messages RENAME TO gone")
            .execute(&s.writer)
            .await
            .unwrap();
        assert!(s.write_events(&[one("c")]).await.is_err());
        assert_eq!(
            count(&s, "events").await,
            2,
            "the failed batch's event rolled back"
        );
        assert_eq!(synchronous(&s).await, 2);
    }

    #[tokio::test]
    async fn the_old_enqueue_trigger_is_gone() {
        let (_dir, url, s) = temp_store().await;
        let triggers = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'";
        assert_eq!(scalar(&s, triggers).await, 0);
        assert_eq!(
            scalar(&s, "SELECT MAX(version) FROM schema_version").await,
            7
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
        let s = SqliteStore::open("sqlite::memory:").await.unwrap();
        assert!(s.wal.is_none());
        s.sync().await.unwrap();
    }
}
