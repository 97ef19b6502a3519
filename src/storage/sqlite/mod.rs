//! The SQLite backend: one daemon owns the file.
//!
//! SQLite runs in WAL mode. Accepted webhooks are written with `synchronous = NORMAL` and
//! flushed (`fdatasync` of the WAL) before they are answered (`commit.rs`); every other
//! write is `synchronous = FULL`. Either way a committed webhook survives a process crash
//! and a power cut. With one process there is nothing to share: claims are
//! the `sending` status, leases and sweep ticks are always granted.

mod commit;
mod groups;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::row;
use super::{EntityMessage, KEY_SEP, OutboxMessage, OutboxStats, RenderedBody, StoreError, now_ms};

const SCHEMA_V1: &str = include_str!("schema.sql");
const SCHEMA_V2: &str = include_str!("schema_v2.sql");
const SCHEMA_V3: &str = include_str!("schema_v3.sql");

/// SQLite allows one writer at a time. Accepted batches are written by `batch`, a
/// connection of the committer's writer thread (`commit.rs`); every other write goes
/// through `writer`, a pool of one connection, so those queue in order (async, woken at
/// once) instead of meeting SQLITE_BUSY and sleeping in SQLite's busy handler (1, 2, 5 …
/// 100 ms steps, which showed up as 50-100 ms ack stalls under load). Reads use `reader`
/// (WAL lets them run alongside the writers).
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    batch: Arc<Mutex<commit::BatchWriter>>,
    /// The write-ahead log `sync` flushes.
    wal: Arc<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// `sqlite://data/x.db` and `sqlite:data/x.db` name the file `data/x.db`; None for an
/// in-memory database (`sqlite::memory:`), which the daemon refuses: it would lose every
/// accepted webhook when the process stops.
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
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
///
/// `heads` is `MATERIALIZED`: inlined, SQLite 3.51's planner drove the claim from the
/// `messages_status` index instead, visiting every pending message and its chat; with
/// 91,000 pending messages a claim took 208 ms instead of 0.2 ms.
macro_rules! heads {
    () => {
        "WITH RECURSIVE chats(chat) AS (
        SELECT MIN(chat) FROM messages INDEXED BY messages_unsent WHERE status IN ('pending', 'sending')
        UNION ALL
        SELECT (SELECT MIN(chat) FROM messages INDEXED BY messages_unsent
                WHERE status IN ('pending', 'sending') AND chat > chats.chat)
        FROM chats WHERE chats.chat IS NOT NULL
    ),
    heads AS MATERIALIZED (
        SELECT m.* FROM chats
        JOIN messages m ON m.id = (SELECT MIN(id) FROM messages INDEXED BY messages_unsent
                                   WHERE status IN ('pending', 'sending') AND chat = chats.chat)
    )"
    };
}

/// Each chat's oldest message, if it is due: what delivery sends next.
const CLAIM_DUE: &str = concat!(
    heads!(),
    " SELECT h.id, h.chat, h.route, h.request, h.attempts, h.created_at, h.maybe_duplicate,
             h.op, h.entity_key, e.source, e.delivery_id, h.render
      FROM heads h JOIN events e ON e.id = h.event_id
      WHERE h.status = 'pending' AND h.next_attempt_at <= $1
      ORDER BY h.next_attempt_at, h.id LIMIT $2"
);

/// When the next chat's oldest message falls due.
const NEXT_DUE_AT: &str = concat!(
    heads!(),
    " SELECT MIN(next_attempt_at) FROM heads WHERE status = 'pending'"
);

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let Some(path) = sqlite_path(url) else {
            return Err(StoreError::InMemory);
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
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
        SqliteStore::migrate(&writer).await?;
        let batch = commit::BatchWriter::open(&path).map_err(|source| StoreError::OpenBatch {
            path: path.clone(),
            source,
        })?;
        let mut wal = path.into_os_string();
        wal.push("-wal");
        Ok(SqliteStore {
            writer,
            reader,
            batch: Arc::new(Mutex::new(batch)),
            wal: Arc::new(PathBuf::from(wal)),
        })
    }

    /// Applies the schema versions the file does not have yet, in one transaction.
    async fn migrate(writer: &SqlitePool) -> Result<(), StoreError> {
        let mut tx = writer
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
        // 7: batches are written straight into `messages` (`commit.rs`); the trigger that
        // moved a JSON outbox out of `events` is dead. (`events.outbox` stays, always
        // null: dropping a column rewrites the whole table at start-up.)
        if version < 7 {
            apply_version(&mut tx, 7, "DROP TRIGGER IF EXISTS events_enqueue")
                .await
                .map_err(StoreError::Migrate)?;
        }
        tx.commit().await.map_err(StoreError::Migrate)
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
        let rows = sqlx::query(CLAIM_DUE)
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
        Ok(sqlx::query_scalar(NEXT_DUE_AT)
            .fetch_one(&self.reader)
            .await?)
    }

    pub async fn mark_sending(
        &self,
        id: i64,
        rendered: Option<RenderedBody<'_>>,
    ) -> Result<bool, StoreError> {
        sqlx::query(concat!(
            "UPDATE messages SET status = 'sending', attempts = attempts + 1, ",
            rendered_columns!(),
            " WHERE id = $1"
        ))
        .bind(id)
        .bind(rendered.map(|r| r.request))
        .bind(rendered.and_then(|r| r.render_error))
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
    use sqlx::Row;

    /// What delivery asks before each send must cost O(chats) whatever the backlog: the
    /// plan reaches `messages` only through `messages_unsent` or by id, never by scanning
    /// it or through the `status` index. SQLite's planner has no table statistics here,
    /// so the plan does not depend on the data, but it does weigh bound values: with
    /// unbound ones (NULLs) the inlined `heads` was planned well too.
    #[tokio::test]
    async fn delivery_s_queries_walk_heads_not_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let s = SqliteStore::open(&url).await.unwrap();
        for (sql, binds) in [(CLAIM_DUE, true), (NEXT_DUE_AT, false)] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(explain));
            if binds {
                q = q.bind(now_ms()).bind(10_i64);
            }
            let plan: Vec<String> = q
                .fetch_all(&s.reader)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect();
            // `m` is `messages` inside `heads`.
            let on_messages: Vec<&String> = plan
                .iter()
                .filter(|d| d.contains(" messages ") || d.contains(" m "))
                .collect();
            assert!(!on_messages.is_empty(), "{plan:#?}");
            for d in on_messages {
                assert!(
                    d.contains("USING INDEX messages_unsent")
                        || d.contains("USING INTEGER PRIMARY KEY"),
                    "{d} in {plan:#?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn version_4_rekeys_nul_separated_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let s = SqliteStore::open(&url).await.unwrap();
        // Rows as version 3 wrote them, and the store set back to version 3 (the tables
        // and column of versions 5, 6 and 8 go too, to be made again).
        sqlx::raw_sql(
            "INSERT INTO entity_messages VALUES ('r' || char(0) || 'C' || char(0) || 'e', 'C', 5, 1);
             INSERT INTO groups (route, key, spec) VALUES ('r', 'a=1' || char(0) || 'b=2', '{}');
             DELETE FROM schema_version WHERE version >= 4;
             DROP TABLE directory;
             DROP TABLE enrichment_cache;
             ALTER TABLE messages DROP COLUMN render;",
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
