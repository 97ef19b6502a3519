//! SQLite: transcript processing, the webhook queue and the sweep's state.

use super::SqliteStore;
use crate::storage::{QueuedTranscript, StoreError, now_ms, row};

impl SqliteStore {
    /// Queues a transcript id (a repeated announcement is one row). True if new.
    pub async fn enqueue_transcript(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO transcript_queue (id, queued_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn queued_transcripts(&self) -> Result<Vec<QueuedTranscript>, StoreError> {
        let rows = sqlx::query("SELECT id, attempts FROM transcript_queue ORDER BY queued_at, id")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .iter()
            .map(row::queued_transcript)
            .collect::<Result<_, _>>()?)
    }

    pub async fn dequeue_transcript(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM transcript_queue WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn transcript_failed(&self, id: &str, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE transcript_queue SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Whether an event with this delivery id was committed for the source.
    pub async fn has_event(&self, source: &str, delivery_id: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE source = $1 AND delivery_id = $2",
        )
        .bind(source)
        .bind(delivery_id)
        .fetch_one(&self.reader)
        .await?;
        Ok(n > 0)
    }

    pub async fn transcript_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM transcript_state WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    pub async fn set_transcript_state(&self, pairs: &[(&str, String)]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for (k, v) in pairs {
            sqlx::query(
                "INSERT INTO transcript_state (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
