//! SQLite: grouped routes (pending groups, their items, dedup fingerprints, the
//! `max_messages` budget) and silences. The policy lives in `grouping`; this file only
//! reads and writes rows, each change in one transaction.

use sqlx::QueryBuilder;
use sqlx::sqlite::Sqlite;

use super::SqliteStore;
use crate::storage::row;
use crate::storage::{DueGroup, GroupFlush, StoreError, StoredItem, now_ms};

fn push_ids(q: &mut QueryBuilder<Sqlite>, ids: &[i64]) {
    q.push("(");
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    q.push(")");
}

impl SqliteStore {
    /// Groups due at `now`, by route.
    pub async fn due_groups(&self, now: i64, limit: i64) -> Result<Vec<DueGroup>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, route, key, spec FROM groups INDEXED BY groups_due
             WHERE flush_at IS NOT NULL AND flush_at <= $1 ORDER BY route, flush_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(row::due_group).collect::<Result<_, _>>()?)
    }

    /// When the next group is due (unix ms).
    pub async fn next_group_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(flush_at) FROM groups INDEXED BY groups_due WHERE flush_at IS NOT NULL",
        )
        .fetch_one(&self.reader)
        .await?)
    }

    /// Items pending in these groups, oldest first.
    pub async fn group_items(&self, group_ids: &[i64]) -> Result<Vec<StoredItem>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, group_id, event_id, fingerprint, item FROM group_items WHERE group_id IN ",
        );
        push_ids(&mut q, group_ids);
        q.push(" ORDER BY id");
        let rows = q.build().fetch_all(&self.reader).await?;
        Ok(rows
            .iter()
            .map(row::stored_item)
            .collect::<Result<_, _>>()?)
    }

    /// Queues a group's message and consumes its items, atomically: a crash before this
    /// commits sends nothing and keeps the items; after it, the message is in the outbox.
    pub async fn apply_flush(&self, f: &GroupFlush) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
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
            .bind(&m.render_error)
            .bind(m.op.as_str())
            .bind(&m.entity_key)
            .execute(&mut *tx)
            .await?;
        }
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM group_items WHERE id <= ");
        q.push_bind(f.upto_item_id).push(" AND group_id IN ");
        push_ids(&mut q, &f.group_ids);
        if q.build().execute(&mut *tx).await?.rows_affected() != f.items {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE groups SET last_flush_at = ");
        q.push_bind(now)
            .push(", flush_at = CASE WHEN EXISTS (SELECT 1 FROM group_items i WHERE i.group_id = groups.id) THEN ")
            .push_bind(now.saturating_add(f.interval_ms))
            .push(" ELSE NULL END WHERE id IN ");
        push_ids(&mut q, &f.group_ids);
        q.build().execute(&mut *tx).await?;
        SqliteStore::record_flush(&mut tx, f, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves the pending items of `group_ids` into the route's group `key` (created with
    /// `spec` if needed), due at `flush_at` at the latest: the `max_messages` overflow digest.
    pub async fn merge_groups(
        &self,
        route: &str,
        key: &str,
        spec: &str,
        group_ids: &[i64],
        flush_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let target: i64 = sqlx::query_scalar(
            "INSERT INTO groups (route, key, spec, flush_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (route, key) DO UPDATE SET spec = excluded.spec,
               flush_at = COALESCE(MIN(groups.flush_at, excluded.flush_at), excluded.flush_at)
             RETURNING id",
        )
        .bind(route)
        .bind(key)
        .bind(spec)
        .bind(flush_at)
        .fetch_one(&mut *tx)
        .await?;
        let others: Vec<i64> = group_ids.iter().copied().filter(|&g| g != target).collect();
        if !others.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new("UPDATE group_items SET group_id = ");
            q.push_bind(target).push(" WHERE group_id IN ");
            push_ids(&mut q, &others);
            q.build().execute(&mut *tx).await?;
            let mut q =
                QueryBuilder::<Sqlite>::new("UPDATE groups SET flush_at = NULL, last_flush_at = ");
            q.push_bind(now).push(" WHERE id IN ");
            push_ids(&mut q, &others);
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a silence now. False when there is no such active silence.
    pub async fn expire_silence(&self, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE silences SET expired = 1, ends_at = MIN(ends_at, $2) WHERE id = $1 AND expired = 0",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
