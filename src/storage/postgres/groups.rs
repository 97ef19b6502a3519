//! Groups on PostgreSQL: due groups, their items, and flushes and merges that lock the
//! group rows first.

use sqlx::postgres::PgConnection;

use super::{PgStore, clean, clean_opt};
use crate::storage::row;
use crate::storage::{DueGroup, GroupFlush, StoreError, StoredItem, now_ms};

impl PgStore {
    pub async fn due_groups(&self, now: i64, limit: i64) -> Result<Vec<DueGroup>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, route, key, spec FROM groups
             WHERE flush_at IS NOT NULL AND flush_at <= $1 ORDER BY route, flush_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row::due_group).collect::<Result<_, _>>()?)
    }

    pub async fn next_group_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(flush_at) FROM groups WHERE flush_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn group_items(&self, group_ids: &[i64]) -> Result<Vec<StoredItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, group_id, event_id, fingerprint, item FROM group_items
             WHERE group_id = ANY($1) ORDER BY id",
        )
        .bind(group_ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(row::stored_item)
            .collect::<Result<_, _>>()?)
    }

    pub async fn apply_flush(&self, f: &GroupFlush) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        lock_groups(&mut tx, &f.group_ids).await?;
        // Consume the items first: a concurrent flush of the same items blocks above and
        // then finds fewer left than it read, so only one of them queues a message.
        let consumed = sqlx::query("DELETE FROM group_items WHERE id <= $1 AND group_id = ANY($2)")
            .bind(f.upto_item_id)
            .bind(&f.group_ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if consumed != f.items {
            tx.rollback().await?;
            return Ok(false);
        }
        for (event_id, m) in &f.messages {
            sqlx::query(
                "INSERT INTO messages (event_id, route, chat, request, status, created_at, next_attempt_at, render_error, op, entity_key)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6, $7, $8)",
            )
            .bind(event_id)
            .bind(&m.route)
            .bind(&m.chat)
            .bind(&m.request)
            .bind(now)
            .bind(clean_opt(&m.render_error))
            .bind(m.op.as_str())
            .bind(clean_opt(&m.entity_key))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE groups SET last_flush_at = $1,
                 flush_at = CASE WHEN EXISTS (SELECT 1 FROM group_items i WHERE i.group_id = groups.id)
                            THEN $2 ELSE NULL END
             WHERE id = ANY($3)",
        )
        .bind(now)
        .bind(now.saturating_add(f.interval_ms))
        .bind(&f.group_ids)
        .execute(&mut *tx)
        .await?;
        PgStore::record_flush(&mut tx, f, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn merge_groups(
        &self,
        route: &str,
        key: &str,
        spec: &str,
        group_ids: &[i64],
        flush_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let target: i64 = sqlx::query_scalar(
            "INSERT INTO groups (route, key, spec, flush_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (route, key) DO UPDATE SET spec = excluded.spec,
               flush_at = LEAST(groups.flush_at, excluded.flush_at)
             RETURNING id",
        )
        .bind(route)
        .bind(clean(key))
        .bind(spec)
        .bind(flush_at)
        .fetch_one(&mut *tx)
        .await?;
        let others: Vec<i64> = group_ids.iter().copied().filter(|&g| g != target).collect();
        if !others.is_empty() {
            lock_groups(&mut tx, &others).await?;
            sqlx::query("UPDATE group_items SET group_id = $1 WHERE group_id = ANY($2)")
                .bind(target)
                .bind(&others)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE groups SET flush_at = NULL, last_flush_at = $1 WHERE id = ANY($2)")
                .bind(now)
                .bind(&others)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Locks group rows (in id order) before a flush or merge changes them. A commit adding
/// an item to a group locks the group's row first (its upsert) and holds it until it
/// commits, so once these locks are held every item committed to these groups is
/// visible to the statements that follow. Without them, a flush could decide from an
/// older snapshot that a group had nothing left and unschedule it, stranding the item
/// a concurrent commit had just added.
async fn lock_groups(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM groups WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
