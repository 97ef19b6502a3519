//! The PostgreSQL backend: several replicas share one database.
//!
//! - Each message is claimed by one replica: `claim_due` locks the chats' head rows with
//!   `FOR UPDATE SKIP LOCKED` and marks them `claimed` with a lease; `mark_sending`
//!   renews the lease just before the HTTP call. A replica that dies mid-send stops
//!   renewing, its lease runs out, and another replica takes the message over (flagged
//!   as a possible duplicate if it was being sent).
//! - Deduplication is the unique (source, delivery_id) index, whichever replica a
//!   redelivery reaches. A batch inserts its events in key order and upserts its groups
//!   in (route, key) order, so two replicas' batches never wait on each other in a
//!   cycle.
//! - The Roam rate limit is one token bucket row (`roam_pacer`) every replica takes from
//!   with one locked UPDATE per request; a 429 pauses that row, so every replica waits.
//! - Leases (`leases`) elect the replica that runs the group flusher, the transcript
//!   queue's retries and pruning, and let exactly one replica run each scheduled sweep.
//!
//! Times compared across replicas (leases, the bucket) use the database's clock.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::row;
use super::{
    EntityMessage, OutboxMessage, OutboxStats, RenderedBody, ReplicaSettings, StoreError, now_ms,
};

/// Version 4: the same tables as SQLite's versions 1-4, plus the replica tables.
const SCHEMA_V4: &str = include_str!("schema.sql");

/// The database's clock, unix ms.
macro_rules! db_now {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

/// Advisory lock key serializing the migrations of replicas that start together.
const MIGRATION_LOCK: i64 = 0x726f_616d_6e6f; // "roamno"

/// A claimed scheduled run whose replica died unfinished may be claimed again after this.
const TICK_LEASE: Duration = Duration::from_secs(600);

/// Connections per replica: the committer, the delivery worker, the flusher, the sweeper,
/// admin and health requests, with room to spare.
const POOL_SIZE: u32 = 8;

/// Heads of chats: the oldest unsent (pending, claimed or being sent) message of every
/// chat, walked chat by chat over the partial index `messages_unsent`.
macro_rules! heads {
    () => {
        "WITH RECURSIVE chats(chat) AS (
            SELECT MIN(chat) FROM messages WHERE status IN ('pending', 'claimed', 'sending')
            UNION ALL
            SELECT (SELECT MIN(chat) FROM messages
                    WHERE status IN ('pending', 'claimed', 'sending') AND chat > chats.chat)
            FROM chats WHERE chats.chat IS NOT NULL
        ),
        heads AS (
            SELECT (SELECT MIN(id) FROM messages
                    WHERE status IN ('pending', 'claimed', 'sending') AND chat = chats.chat) AS id
            FROM chats WHERE chats.chat IS NOT NULL
        )"
    };
}

// After the macros above, which they use.
mod commit;
mod groups;
mod replicas;
mod url;

pub use url::redacted;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// This process's name in claims and leases.
    replica: Arc<str>,
    lease_ms: i64,
}

/// PostgreSQL text cannot hold NUL; a payload can. Text that comes from outside is
/// stored with NUL as U+FFFD (and looked up the same way), instead of failing the commit
/// and every retry of it.
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

crate::storage::portable::portable!(
    PgStore,
    PgConnection,
    read = pool,
    write = pool,
    clean = clean
);

fn clean_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(|s| clean(s).into_owned())
}

fn new_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

impl PgStore {
    pub async fn open(url: &str, settings: ReplicaSettings) -> Result<PgStore, StoreError> {
        let open_err = |source| StoreError::Open {
            url: redacted(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let store = PgStore {
            pool,
            replica: new_replica_id().into(),
            lease_ms: settings.lease.as_millis().min(i64::MAX as u128) as i64,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn replica_id(&self) -> &str {
        &self.replica
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::Migrate)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Migrate)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Migrate)?;
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::Migrate)?;
        if version.unwrap_or(0) < 4 {
            sqlx::raw_sql(SCHEMA_V4)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::Migrate)?;
            sqlx::query("INSERT INTO schema_version (version) VALUES (4)")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::Migrate)?;
        }
        for &(n, sql) in super::SHARED_SCHEMA {
            if version.unwrap_or(0) < n {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::Migrate)?;
                sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                    .bind(n)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::Migrate)?;
            }
        }
        // The bucket starts full (the first take clamps it to the burst).
        sqlx::query(concat!(
            "INSERT INTO roam_pacer (name, tokens, updated_at) VALUES ('roam', 1e9, ",
            db_now!(),
            ") ON CONFLICT (name) DO NOTHING"
        ))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Migrate)?;
        tx.commit().await.map_err(StoreError::Migrate)
    }

    pub async fn recover_in_flight(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(concat!(
            "WITH lost AS (
                 SELECT id, status FROM messages
                 WHERE status IN ('claimed', 'sending') AND lease_until < ",
            db_now!(),
            " FOR UPDATE SKIP LOCKED)
             UPDATE messages m SET status = 'pending', claimed_by = NULL, lease_until = NULL,
                 maybe_duplicate = m.maybe_duplicate OR lost.status = 'sending'
             FROM lost WHERE m.id = lost.id
             RETURNING m.id, lost.status = 'sending'"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut ids = Vec::new();
        for r in rows {
            if r.try_get::<bool, _>(1)? {
                ids.push(r.try_get(0)?);
            }
        }
        Ok(ids)
    }

    pub async fn claim_due(&self, now: i64, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query(concat!(
            heads!(),
            ",
            picked AS (
                SELECT m.id, m.status FROM messages m JOIN heads h ON h.id = m.id
                WHERE (m.status = 'pending' AND m.next_attempt_at <= $1)
                   OR (m.status IN ('claimed', 'sending') AND m.lease_until < ",
            db_now!(),
            ")
                ORDER BY m.next_attempt_at, m.id LIMIT $2
                FOR UPDATE OF m SKIP LOCKED
            )
            UPDATE messages m SET status = 'claimed', claimed_by = $3, lease_until = ",
            db_now!(),
            " + $4,
                maybe_duplicate = m.maybe_duplicate OR picked.status = 'sending'
            FROM picked, events e
            WHERE m.id = picked.id AND e.id = m.event_id
            RETURNING m.id, m.chat, m.route, m.request, m.attempts, m.created_at, m.maybe_duplicate,
                      m.op, m.entity_key, e.source, e.delivery_id, m.render, m.next_attempt_at"
        ))
        .bind(now)
        .bind(limit)
        .bind(&*self.replica)
        .bind(self.lease_ms)
        .fetch_all(&self.pool)
        .await?;
        // UPDATE ... RETURNING has no order: oldest due first, as SQLite gives them.
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get::<i64, _>(12)?, row::outbox_message(r)?));
        }
        out.sort_by_key(|(due, m)| (*due, m.id));
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }

    pub async fn release_claims(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE messages SET status = 'pending', claimed_by = NULL, lease_until = NULL
             WHERE id = ANY($1) AND status = 'claimed' AND claimed_by = $2",
        )
        .bind(ids)
        .bind(&*self.replica)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(concat!(
            heads!(),
            " SELECT MIN(m.next_attempt_at) FROM messages m JOIN heads h ON h.id = m.id WHERE m.status = 'pending'"
        ))
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn mark_sending(
        &self,
        id: i64,
        rendered: Option<RenderedBody<'_>>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(concat!(
            "UPDATE messages SET status = 'sending', attempts = attempts + 1, ",
            rendered_columns!(),
            ", lease_until = ",
            db_now!(),
            " + $5 WHERE id = $1 AND status = 'claimed' AND claimed_by = $4"
        ))
        .bind(id)
        .bind(rendered.map(|r| r.request))
        .bind(rendered.and_then(|r| r.render_error.map(clean)))
        .bind(&*self.replica)
        .bind(self.lease_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn mark_delivered(
        &self,
        id: i64,
        posted: Option<EntityMessage<'_>>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE messages SET status = 'delivered', delivered_at = $2, last_error = NULL,
                 claimed_by = NULL, lease_until = NULL WHERE id = $1",
        )
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
            .bind(clean(p.entity_key))
            .bind(p.chat)
            .bind(p.timestamp)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn retry_later(
        &self,
        id: i64,
        next_at: i64,
        error: &str,
        count_attempt: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET status = 'pending', next_attempt_at = $2, last_error = $3,
                 attempts = CASE WHEN $4 THEN attempts ELSE GREATEST(attempts - 1, 0) END,
                 claimed_by = NULL, lease_until = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(next_at)
        .bind(clean(error))
        .bind(count_attempt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET status = 'dead', last_error = $2, claimed_by = NULL, lease_until = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(clean(error))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let (pending, oldest, dead, delivered): (i64, Option<i64>, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE status IN ('pending', 'claimed', 'sending')),
                    MIN(created_at) FILTER (WHERE status IN ('pending', 'claimed', 'sending')),
                    COUNT(*) FILTER (WHERE status = 'dead'),
                    COUNT(*) FILTER (WHERE status = 'delivered')
             FROM messages",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            pending,
            dead,
            delivered,
            oldest_pending_age_seconds: oldest.map(|t| ((now_ms() - t).max(0)) as f64 / 1000.0),
        })
    }

    // ---- silences ----------------------------------------------------------------

    pub async fn expire_silence(&self, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE silences SET expired = true, ends_at = LEAST(ends_at, $2) WHERE id = $1 AND NOT expired",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- transcripts -------------------------------------------------------------

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
