//! The SQLite backend: one daemon owns the file.
//!
//! SQLite runs in WAL mode with `synchronous = FULL`, so a committed webhook survives a
//! process crash and a power cut. With one process there is nothing to share: claims are
//! the `sending` status, leases and sweep ticks are always granted.

mod groups;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use std::collections::HashMap;

use sqlx::sqlite::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, SqliteConnection};

use super::row;
use super::{
    Committed, EntityMessage, KEY_SEP, NewEvent, NewMessage, OutboxMessage, OutboxStats,
    StoreError, now_ms,
};

const SCHEMA_V1: &str = include_str!("schema.sql");
const SCHEMA_V2: &str = include_str!("schema_v2.sql");
const SCHEMA_V3: &str = include_str!("schema_v3.sql");

/// SQLite allows 32,766 bound values per statement; an event row binds 7.
const EVENT_ROWS_PER_STATEMENT: usize = 1000;

/// SQLite allows one writer at a time. All writes go through `writer`, a pool of one
/// connection, so writers queue in order (async, woken at once) instead of meeting
/// SQLITE_BUSY and sleeping in SQLite's busy handler (1, 2, 5 … 100 ms steps, which
/// showed up as 50-100 ms ack stalls under load). Reads use `reader` (WAL lets them
/// run alongside the writer).
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// `sqlite://data/x.db` and `sqlite:data/x.db` name the file `data/x.db`.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

crate::storage::portable::portable!(
    SqliteStore,
    SqliteConnection,
    read = reader,
    write = writer,
    clean = keep
);

/// SQLite stores text as given.
/// Runs a schema version's SQL (none for a version done in code) and records it.
async fn apply_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    n: i64,
    sql: &'static str,
) -> Result<(), sqlx::Error> {
    if !sql.is_empty() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
        .bind(n)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn keep(s: &str) -> &str {
    s
}

/// Schema version 4: stored composite keys (entity keys, group keys) are joined by
/// `KEY_SEP` instead of NUL, the format PostgreSQL can store too. Done in Rust, row by
/// row, because SQLite's string functions are undefined on text holding NUL. Delivered
/// and dropped messages are left as they were: nothing looks their keys up again.
async fn rekey_v4(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let fix = |s: &str| s.replace('\0', &KEY_SEP.to_string());
    for (select, update) in [
        (
            "SELECT rowid, entity_key FROM entity_messages",
            "UPDATE entity_messages SET entity_key = $2 WHERE rowid = $1",
        ),
        (
            "SELECT id, key FROM groups",
            "UPDATE groups SET key = $2 WHERE id = $1",
        ),
        (
            "SELECT id, entity_key FROM messages
             WHERE entity_key IS NOT NULL AND status NOT IN ('delivered', 'dropped')",
            "UPDATE messages SET entity_key = $2 WHERE id = $1",
        ),
    ] {
        let rows: Vec<(i64, String)> = sqlx::query_as(select).fetch_all(&mut *conn).await?;
        for (id, key) in rows.into_iter().filter(|(_, k)| k.contains('\0')) {
            sqlx::query(update)
                .bind(id)
                .bind(fix(&key))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// A CTE `heads`: the oldest unsent message of every chat. It walks the partial index
/// `messages_unsent` chat by chat (a loose index scan), so its cost grows with the
/// number of chats with a backlog, not with the backlog.
const HEADS: &str = "WITH RECURSIVE chats(chat) AS (
        SELECT MIN(chat) FROM messages INDEXED BY messages_unsent WHERE status IN ('pending', 'sending')
        UNION ALL
        SELECT (SELECT MIN(chat) FROM messages INDEXED BY messages_unsent
                WHERE status IN ('pending', 'sending') AND chat > chats.chat)
        FROM chats WHERE chats.chat IS NOT NULL
    ),
    heads AS (
        SELECT m.* FROM chats
        JOIN messages m ON m.id = (SELECT MIN(id) FROM messages INDEXED BY messages_unsent
                                   WHERE status IN ('pending', 'sending') AND chat = chats.chat)
    )";

/// The `outbox` column: the messages the `events_enqueue` trigger turns into rows.
fn outbox_json(messages: &[NewMessage]) -> Option<String> {
    if messages.is_empty() {
        return None;
    }
    let list: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "route": m.route,
                "chat": m.chat,
                "request": m.request,
                "render_error": m.render_error,
                "op": m.op.as_str(),
                "entity_key": m.entity_key,
            })
        })
        .collect();
    serde_json::to_string(&list).ok()
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        if let Some(path) = sqlite_path(url)
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(3)
            .connect_with(options.read_only(true))
            .await
            .map_err(open_err)?;
        let store = SqliteStore { writer, reader };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::Migrate)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Migrate)?;
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::Migrate)?;
        let version = version.unwrap_or(0);
        // Versions 1-3 are SQLite's own SQL, 4 rewrites keys, the rest are shared.
        let own: [(i64, &str); 3] = [(1, SCHEMA_V1), (2, SCHEMA_V2), (3, SCHEMA_V3)];
        for (n, sql) in own {
            if version < n {
                apply_version(&mut tx, n, sql)
                    .await
                    .map_err(StoreError::Migrate)?;
            }
        }
        if version < 4 {
            rekey_v4(&mut tx).await.map_err(StoreError::Migrate)?;
            apply_version(&mut tx, 4, "")
                .await
                .map_err(StoreError::Migrate)?;
        }
        for &(n, sql) in super::SHARED_SCHEMA {
            if version < n {
                apply_version(&mut tx, n, sql)
                    .await
                    .map_err(StoreError::Migrate)?;
            }
        }
        tx.commit().await.map_err(StoreError::Migrate)
    }

    /// Records a batch of events and queues their messages. Each chunk is one INSERT
    /// statement (atomic on its own: the `events_enqueue` trigger queues the messages
    /// inside it), so a batch of hundreds of webhooks costs one round trip to SQLite's
    /// thread and one fsync. Returns, per event, whether it was new or a duplicate.
    pub async fn commit_events(&self, events: &[NewEvent]) -> Result<Vec<Committed>, StoreError> {
        let now = now_ms();
        // (source, delivery_id) -> new row id, for the rows the INSERT actually wrote.
        let key = |source: &str, delivery: &str| format!("{source}\u{0}{delivery}");
        let mut inserted: HashMap<String, i64> = HashMap::with_capacity(events.len());
        // Held items go in with their events, atomically: then a transaction is needed.
        // Without them each chunk is one statement, atomic by itself.
        let any_held = events.iter().any(|e| !e.held.is_empty());
        let mut conn = self.writer.acquire().await?;
        if any_held {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        }
        let result = self
            .insert_events(&mut conn, events, now, &mut inserted)
            .await;
        let result = match result {
            Ok(()) if any_held => {
                match groups::insert_held(&mut conn, events, &inserted, now).await {
                    Ok(()) => sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| ()),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        if let Err(e) = result {
            if any_held {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            return Err(e.into());
        }
        drop(conn);
        // The first event with a given key got the row; any other is a duplicate.
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            match inserted.remove(&key(&ev.source, &ev.delivery_id)) {
                Some(event_id) => out.push(Committed::Inserted {
                    event_id,
                    messages: ev.messages.len(),
                    held: ev.held.len(),
                }),
                None => out.push(Committed::Duplicate {
                    routes: self.routes_of(&ev.source, &ev.delivery_id).await?,
                }),
            }
        }
        Ok(out)
    }

    async fn insert_events(
        &self,
        conn: &mut sqlx::SqliteConnection,
        events: &[NewEvent],
        now: i64,
        inserted: &mut HashMap<String, i64>,
    ) -> Result<(), sqlx::Error> {
        let key = |source: &str, delivery: &str| format!("{source}\u{0}{delivery}");
        for chunk in events.chunks(EVENT_ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (source, delivery_id, name, entity, routes, received_at, outbox) ",
            );
            q.push_values(chunk, |mut row, ev| {
                row.push_bind(&ev.source)
                    .push_bind(&ev.delivery_id)
                    .push_bind(&ev.name)
                    .push_bind(&ev.entity)
                    .push_bind(serde_json::to_string(&ev.routes).unwrap_or_else(|_| "[]".into()))
                    .push_bind(now)
                    .push_bind(outbox_json(&ev.messages));
            });
            q.push(
                " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id",
            );
            for row in q.build().fetch_all(&mut *conn).await? {
                let id: i64 = row.try_get(0)?;
                let source: String = row.try_get(1)?;
                let delivery: String = row.try_get(2)?;
                inserted.insert(key(&source, &delivery), id);
            }
        }
        Ok(())
    }

    /// At start-up: messages that were being sent when the process stopped go back to
    /// pending, flagged, because Roam may or may not have received them.
    pub async fn recover_in_flight(&self) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE messages SET status = 'pending', maybe_duplicate = 1 WHERE status = 'sending' RETURNING id",
        )
        .fetch_all(&self.writer)
        .await?;
        Ok(ids)
    }

    pub async fn claim_due(&self, now: i64, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{HEADS}
             SELECT m.id, m.chat, m.route, m.request, m.attempts, m.created_at, m.maybe_duplicate,
                    m.op, m.entity_key, e.source, e.delivery_id
             FROM heads m JOIN events e ON e.id = m.event_id
             WHERE m.status = 'pending' AND m.next_attempt_at <= $1
             ORDER BY m.next_attempt_at, m.id LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(row::outbox_message)
            .collect::<Result<_, _>>()?)
    }

    /// One process: nothing is claimed beyond the `sending` status.
    pub async fn release_claims(&self, _ids: &[i64]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Messages held back behind an earlier one of their chat do not count: they cannot
    /// be sent yet.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "{HEADS} SELECT MIN(next_attempt_at) FROM heads WHERE status = 'pending'"
        )))
        .fetch_one(&self.reader)
        .await?)
    }

    pub async fn mark_sending(&self, id: i64) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE messages SET status = 'sending', attempts = attempts + 1 WHERE id = $1",
        )
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(true)
    }

    /// Marks a message delivered; `posted` records the Roam message that now stands for
    /// its entity (an upsert's first post), in the same transaction.
    pub async fn mark_delivered(
        &self,
        id: i64,
        posted: Option<EntityMessage<'_>>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE messages SET status = 'delivered', delivered_at = $2, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if let Some(p) = posted {
            sqlx::query(
                "INSERT INTO entity_messages (entity_key, chat, timestamp, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (entity_key) DO UPDATE SET chat = excluded.chat, timestamp = excluded.timestamp,
                     updated_at = excluded.updated_at",
            )
            .bind(p.entity_key)
            .bind(p.chat)
            .bind(p.timestamp)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Back to pending, due at `next_at`. `count_attempt = false` for waits that are not
    /// the message's fault (429, an unauthorized key): they do not use up its retries.
    pub async fn retry_later(
        &self,
        id: i64,
        next_at: i64,
        error: &str,
        count_attempt: bool,
    ) -> Result<(), StoreError> {
        let q = if count_attempt {
            "UPDATE messages SET status = 'pending', next_attempt_at = $2, last_error = $3 WHERE id = $1"
        } else {
            "UPDATE messages SET status = 'pending', next_attempt_at = $2, last_error = $3, attempts = MAX(attempts - 1, 0) WHERE id = $1"
        };
        sqlx::query(q)
            .bind(id)
            .bind(next_at)
            .bind(error)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn mark_dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE messages SET status = 'dead', last_error = $2 WHERE id = $1")
            .bind(id)
            .bind(error)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let (pending, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM messages INDEXED BY messages_unsent
             WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.reader)
        .await?;
        let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE status = 'dead'")
            .fetch_one(&self.reader)
            .await?;
        let delivered: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE status = 'delivered'")
                .fetch_one(&self.reader)
                .await?;
        Ok(OutboxStats {
            pending,
            dead,
            delivered,
            oldest_pending_age_seconds: oldest.map(|t| ((now_ms() - t).max(0)) as f64 / 1000.0),
        })
    }

    /// One process holds every lease.
    pub async fn try_lease(
        &self,
        _name: &str,
        _holder: &str,
        _ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// One process runs every scheduled run.
    pub async fn claim_tick(&self, _name: &str, _tick: i64) -> Result<bool, StoreError> {
        Ok(true)
    }

    pub async fn release_tick(&self, _name: &str, _tick: i64) -> Result<(), StoreError> {
        Ok(())
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn version_4_rekeys_nul_separated_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let s = SqliteStore::open(&url).await.unwrap();
        // Rows as version 3 wrote them, and the store set back to version 3 (version 5's
        // table goes too, to be made again).
        sqlx::raw_sql(
            "INSERT INTO entity_messages VALUES ('r' || char(0) || 'C' || char(0) || 'e', 'C', 5, 1);
             INSERT INTO groups (route, key, spec) VALUES ('r', 'a=1' || char(0) || 'b=2', '{}');
             DELETE FROM schema_version WHERE version >= 4;
             DROP TABLE directory;
             DROP TABLE enrichment_cache;",
        )
        .execute(&s.writer)
        .await
        .unwrap();
        s.close().await;
        let s = SqliteStore::open(&url).await.unwrap();
        let key = format!("r{KEY_SEP}C{KEY_SEP}e");
        assert_eq!(s.entity_message(&key).await.unwrap(), Some(5));
        let groups: Vec<String> = sqlx::query_scalar("SELECT key FROM groups")
            .fetch_all(&s.reader)
            .await
            .unwrap();
        assert_eq!(groups, vec![format!("a=1{KEY_SEP}b=2")]);
    }
}
