//! Queries whose SQL is the same on SQLite and PostgreSQL, written once and expanded
//! into each backend's `impl` by `portable!`. What differs (claims, `INDEXED BY`, `LEAST`
//! versus `MIN`, NUL handling) stays in `sqlite/` and `postgres/`.
//!
//! `portable!(Type, Connection, read = field, write = field, clean = function)` names
//! the store, its connection type, the pool to read from, the pool to write to, and how
//! free text is stored (`clean` on PostgreSQL,
//! which cannot hold NUL; `keep` on SQLite).

macro_rules! portable {
    ($store:ty, $conn:ty, read = $r:ident, write = $w:ident, clean = $clean:path) => {
        impl $store {
            /// Inside a flush's transaction: the fingerprints it sent (`repeat_interval`)
            /// and the route's `max_messages` window.
            async fn record_flush(
                conn: &mut $conn,
                f: &crate::storage::GroupFlush,
                now: i64,
            ) -> Result<(), sqlx::Error> {
                for fp in &f.fingerprints {
                    sqlx::query(
                        "INSERT INTO fingerprints (route, fingerprint, sent_at) VALUES ($1, $2, $3)
                         ON CONFLICT (route, fingerprint) DO UPDATE SET sent_at = excluded.sent_at",
                    )
                    .bind(&f.route)
                    .bind($clean(fp))
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
                if let Some((start, sent)) = f.window {
                    sqlx::query(
                        "INSERT INTO route_windows (route, window_start, sent) VALUES ($1, $2, $3)
                         ON CONFLICT (route) DO UPDATE SET window_start = excluded.window_start,
                             sent = excluded.sent",
                    )
                    .bind(&f.route)
                    .bind(start)
                    .bind(sent)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }

            pub async fn entity_message(
                &self,
                entity_key: &str,
            ) -> Result<Option<i64>, crate::storage::StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT timestamp FROM entity_messages WHERE entity_key = $1",
                )
                .bind($clean(entity_key))
                .fetch_optional(&self.$r)
                .await?)
            }

            pub async fn list_messages(
                &self,
                q: &crate::storage::MessageQuery,
            ) -> Result<Vec<crate::storage::MessageRecord>, crate::storage::StoreError> {
                // Only the filters that are set, so each can use its index (status, the
                // id range) and a page deep in 100,000 rows reads about one page of them.
                let mut conds: Vec<String> = Vec::new();
                let mut texts: Vec<String> = Vec::new();
                let arg = |texts: &mut Vec<String>, v: &str| {
                    texts.push($clean(v).to_string());
                    format!("${}", texts.len())
                };
                match q.status {
                    Some("pending") => conds.push("m.status IN ('pending', 'claimed', 'sending')".into()),
                    Some(st) => {
                        let p = arg(&mut texts, st);
                        conds.push(format!("m.status = {p}"));
                    }
                    None => {}
                }
                for (column, value) in [("m.route", &q.route), ("e.source", &q.source), ("m.chat", &q.chat)] {
                    if let Some(v) = value {
                        let p = arg(&mut texts, v);
                        conds.push(format!("{column} = {p}"));
                    }
                }
                let before = format!("${}", texts.len() + 1);
                let limit = format!("${}", texts.len() + 2);
                conds.push(format!("m.id < {before}"));
                let sql = format!(
                    "SELECT {} FROM messages m JOIN events e ON e.id = m.event_id
                     WHERE {} ORDER BY m.id DESC LIMIT {limit}",
                    crate::storage::row::RECORD_COLUMNS,
                    conds.join(" AND ")
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for t in texts {
                    query = query.bind(t);
                }
                let rows = query
                    .bind(q.before.unwrap_or(i64::MAX))
                    .bind(q.limit)
                    .fetch_all(&self.$r)
                    .await?;
                Ok(rows
                    .iter()
                    .map(crate::storage::row::record)
                    .collect::<Result<_, _>>()?)
            }

            pub async fn activity(
                &self,
                now: i64,
                period_ms: i64,
                periods: i64,
            ) -> Result<crate::storage::Activity, crate::storage::StoreError> {
                let since = now - period_ms * periods;
                let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT status, ($1 - COALESCE(delivered_at, next_attempt_at)) / $2 AS period,
                            COUNT(*)
                     FROM messages
                     WHERE (status = 'delivered' AND delivered_at > $3)
                        OR (status = 'dead' AND next_attempt_at > $3)
                     GROUP BY status, period",
                )
                .bind(now)
                .bind(period_ms.max(1))
                .bind(since)
                .fetch_all(&self.$r)
                .await?;
                let n = periods.max(0) as usize;
                let mut out = crate::storage::Activity {
                    delivered: vec![0; n],
                    dead: vec![0; n],
                };
                for (status, period, count) in rows {
                    let list = if status == "delivered" { &mut out.delivered } else { &mut out.dead };
                    // A clock step back puts a row in the future: count it as now.
                    if let Some(slot) = usize::try_from(period.max(0)).ok().and_then(|p| list.get_mut(p)) {
                        *slot += count;
                    }
                }
                Ok(out)
            }

            pub async fn get_message(
                &self,
                id: i64,
            ) -> Result<Option<crate::storage::MessageRecord>, crate::storage::StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM messages m JOIN events e ON e.id = m.event_id WHERE m.id = $1",
                    crate::storage::row::RECORD_COLUMNS
                )))
                .bind(id)
                .fetch_optional(&self.$r)
                .await?;
                Ok(row.as_ref().map(crate::storage::row::record).transpose()?)
            }

            pub async fn requeue(&self, id: i64) -> Result<bool, crate::storage::StoreError> {
                let r = sqlx::query(
                    "UPDATE messages SET status = 'pending', attempts = 0, next_attempt_at = $2, created_at = $2
                     WHERE id = $1 AND status IN ('dead', 'dropped')",
                )
                .bind(id)
                .bind(crate::storage::now_ms())
                .execute(&self.$w)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            pub async fn requeue_all_dead(&self) -> Result<u64, crate::storage::StoreError> {
                let r = sqlx::query(
                    "UPDATE messages SET status = 'pending', attempts = 0, next_attempt_at = $1, created_at = $1
                     WHERE status = 'dead'",
                )
                .bind(crate::storage::now_ms())
                .execute(&self.$w)
                .await?;
                Ok(r.rows_affected())
            }

            pub async fn drop_message(&self, id: i64) -> Result<bool, crate::storage::StoreError> {
                let r = sqlx::query(
                    "UPDATE messages SET status = 'dropped', last_error = COALESCE(last_error, 'dropped by operator')
                     WHERE id = $1 AND status IN ('pending', 'dead')",
                )
                .bind(id)
                .execute(&self.$w)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            pub async fn prune(&self, cutoff_ms: i64) -> Result<(u64, u64), crate::storage::StoreError> {
                let messages = self
                    .delete_in_batches(
                        "DELETE FROM messages WHERE id IN (
                             SELECT id FROM messages
                             WHERE status IN ('delivered', 'dropped') AND COALESCE(delivered_at, created_at) < $1
                             LIMIT $2)",
                        cutoff_ms,
                    )
                    .await?;
                let events = self
                    .delete_in_batches(
                        "DELETE FROM events WHERE id IN (
                             SELECT e.id FROM events e
                             WHERE e.received_at < $1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.event_id = e.id)
                               AND NOT EXISTS (SELECT 1 FROM group_items g WHERE g.event_id = e.id)
                             LIMIT $2)",
                        cutoff_ms,
                    )
                    .await?;
                // Dedup memory, entity map and idle groups expire with the same retention.
                for sql in [
                    "DELETE FROM fingerprints WHERE (route, fingerprint) IN
                         (SELECT route, fingerprint FROM fingerprints WHERE sent_at < $1 LIMIT $2)",
                    "DELETE FROM entity_messages WHERE entity_key IN
                         (SELECT entity_key FROM entity_messages WHERE updated_at < $1 LIMIT $2)",
                    "DELETE FROM groups WHERE id IN (SELECT id FROM groups WHERE flush_at IS NULL
                         AND COALESCE(last_flush_at, 0) < $1
                         AND NOT EXISTS (SELECT 1 FROM group_items i WHERE i.group_id = groups.id) LIMIT $2)",
                ] {
                    self.delete_in_batches(sql, cutoff_ms).await?;
                }
                Ok((messages, events))
            }

            /// Runs `sql` (binding the cutoff and a batch size) until it deletes less than
            /// a batch, so each write transaction stays short.
            async fn delete_in_batches(
                &self,
                sql: &'static str,
                cutoff_ms: i64,
            ) -> Result<u64, crate::storage::StoreError> {
                const BATCH: i64 = 2000;
                let mut total = 0;
                loop {
                    let n = sqlx::query(sql)
                        .bind(cutoff_ms)
                        .bind(BATCH)
                        .execute(&self.$w)
                        .await?
                        .rows_affected();
                    total += n;
                    if n < BATCH as u64 {
                        return Ok(total);
                    }
                }
            }

            pub async fn held_counts(&self) -> Result<Vec<(String, i64)>, crate::storage::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT g.route, COUNT(*) FROM group_items i JOIN groups g ON g.id = i.group_id
                     GROUP BY g.route ORDER BY g.route",
                )
                .fetch_all(&self.$r)
                .await?)
            }

            pub async fn sent_fingerprints(
                &self,
                route: &str,
                since: i64,
            ) -> Result<std::collections::HashSet<String>, crate::storage::StoreError> {
                let rows: Vec<String> = sqlx::query_scalar(
                    "SELECT fingerprint FROM fingerprints WHERE route = $1 AND sent_at >= $2",
                )
                .bind(route)
                .bind(since)
                .fetch_all(&self.$r)
                .await?;
                Ok(rows.into_iter().collect())
            }

            pub async fn route_window(
                &self,
                route: &str,
            ) -> Result<Option<(i64, i64)>, crate::storage::StoreError> {
                Ok(sqlx::query_as("SELECT window_start, sent FROM route_windows WHERE route = $1")
                    .bind(route)
                    .fetch_optional(&self.$r)
                    .await?)
            }

            pub async fn park_group(&self, id: i64) -> Result<(), crate::storage::StoreError> {
                sqlx::query("UPDATE groups SET flush_at = NULL WHERE id = $1")
                    .bind(id)
                    .execute(&self.$w)
                    .await?;
                Ok(())
            }

            pub async fn add_silence(
                &self,
                matcher: &str,
                starts_at: i64,
                ends_at: i64,
                comment: &str,
                created_by: &str,
            ) -> Result<i64, crate::storage::StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO silences (matcher, starts_at, ends_at, comment, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(matcher)
                .bind(starts_at)
                .bind(ends_at)
                .bind($clean(comment))
                .bind($clean(created_by))
                .bind(crate::storage::now_ms())
                .fetch_one(&self.$w)
                .await?)
            }

            pub async fn list_silences(
                &self,
                all: bool,
            ) -> Result<Vec<crate::storage::Silence>, crate::storage::StoreError> {
                let rows = sqlx::query(
                    "SELECT id, matcher, starts_at, ends_at, comment, created_by, created_at, expired
                     FROM silences WHERE $1 OR (NOT expired AND ends_at > $2) ORDER BY id DESC",
                )
                .bind(all)
                .bind(crate::storage::now_ms())
                .fetch_all(&self.$r)
                .await?;
                Ok(rows
                    .iter()
                    .map(crate::storage::row::silence)
                    .collect::<Result<_, _>>()?)
            }

            pub async fn enqueue_transcript(&self, id: &str) -> Result<bool, crate::storage::StoreError> {
                let r = sqlx::query(
                    "INSERT INTO transcript_queue (id, queued_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                )
                .bind($clean(id))
                .bind(crate::storage::now_ms())
                .execute(&self.$w)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            pub async fn queued_transcripts(
                &self,
            ) -> Result<Vec<crate::storage::QueuedTranscript>, crate::storage::StoreError> {
                let rows = sqlx::query("SELECT id, attempts FROM transcript_queue ORDER BY queued_at, id")
                    .fetch_all(&self.$r)
                    .await?;
                Ok(rows
                    .iter()
                    .map(crate::storage::row::queued_transcript)
                    .collect::<Result<_, _>>()?)
            }

            pub async fn dequeue_transcript(&self, id: &str) -> Result<(), crate::storage::StoreError> {
                sqlx::query("DELETE FROM transcript_queue WHERE id = $1")
                    .bind($clean(id))
                    .execute(&self.$w)
                    .await?;
                Ok(())
            }

            pub async fn transcript_failed(
                &self,
                id: &str,
                error: &str,
            ) -> Result<(), crate::storage::StoreError> {
                sqlx::query(
                    "UPDATE transcript_queue SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                )
                .bind($clean(id))
                .bind($clean(error))
                .execute(&self.$w)
                .await?;
                Ok(())
            }

            pub async fn has_event(
                &self,
                source: &str,
                delivery_id: &str,
            ) -> Result<bool, crate::storage::StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE source = $1 AND delivery_id = $2)",
                )
                .bind($clean(source))
                .bind($clean(delivery_id))
                .fetch_one(&self.$r)
                .await?)
            }

            pub async fn transcript_state(
                &self,
                key: &str,
            ) -> Result<Option<String>, crate::storage::StoreError> {
                Ok(sqlx::query_scalar("SELECT value FROM transcript_state WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.$r)
                    .await?)
            }

            pub async fn directory(
                &self,
            ) -> Result<Vec<crate::storage::DirEntry>, crate::storage::StoreError> {
                let rows = sqlx::query(
                    "SELECT kind, key, id, label, grp, chat_kind, seen_at FROM directory ORDER BY kind, key",
                )
                .fetch_all(&self.$r)
                .await?;
                Ok(rows
                    .iter()
                    .map(crate::storage::row::dir_entry)
                    .collect::<Result<_, _>>()?)
            }

            pub async fn put_directory(
                &self,
                entries: &[crate::storage::DirEntry],
            ) -> Result<(), crate::storage::StoreError> {
                let mut tx = self.$w.begin().await?;
                for e in entries {
                    sqlx::query(
                        "INSERT INTO directory (kind, key, id, label, grp, chat_kind, seen_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (kind, key) DO UPDATE SET id = excluded.id,
                           label = excluded.label, grp = excluded.grp,
                           chat_kind = excluded.chat_kind, seen_at = excluded.seen_at",
                    )
                    .bind($clean(&e.kind))
                    .bind($clean(&e.key))
                    .bind($clean(&e.id))
                    .bind($clean(&e.label))
                    .bind(e.group.as_deref().map(|g| $clean(g).to_string()))
                    .bind(e.chat_kind.as_deref().map(|k| $clean(k).to_string()))
                    .bind(e.seen_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn cached(
                &self,
                key: &str,
            ) -> Result<Option<(String, i64)>, crate::storage::StoreError> {
                Ok(sqlx::query_as("SELECT value, fetched_at FROM enrichment_cache WHERE key = $1")
                    .bind($clean(key))
                    .fetch_optional(&self.$r)
                    .await?)
            }

            pub async fn put_cached(
                &self,
                key: &str,
                value: &str,
                fetched_at: i64,
            ) -> Result<(), crate::storage::StoreError> {
                sqlx::query(
                    "INSERT INTO enrichment_cache (key, value, fetched_at) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at",
                )
                .bind($clean(key))
                .bind($clean(value))
                .bind(fetched_at)
                .execute(&self.$w)
                .await?;
                Ok(())
            }

            pub async fn set_transcript_state(
                &self,
                pairs: &[(&str, String)],
            ) -> Result<(), crate::storage::StoreError> {
                let mut tx = self.$w.begin().await?;
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
    };
}

pub(crate) use portable;
