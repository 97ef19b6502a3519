//! PostgreSQL: writing a batch of accepted events.
//!
//! Events go in key order, messages get their ids in the order their events came, and a
//! redelivery (the unique `(source, delivery_id)` index) inserts nothing; the same rules
//! as SQLite's `commit.rs`. A batch that holds nothing back for groups is one statement:
//! the events' `INSERT` and their messages' `INSERT` in one `WITH`, atomic as every
//! statement is, so one round trip to the server where `BEGIN`, two `INSERT`s and
//! `COMMIT` took four. A batch that holds items back is a transaction: events,
//! messages, then the groups in (route, key) order (see the module's notes on replicas).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::{PgStore, clean, clean_opt};
use crate::storage::{
    Committed, HeldItem, NewEvent, NewMessage, StoreError, messages_to_queue, now_ms,
};

/// The batch's events, one row per key (its first event), in key order: `$1`-`$6`.
macro_rules! insert_events {
    () => {
        "INSERT INTO events (source, delivery_id, name, entity, routes, received_at)
         SELECT s, d, n, e, r, $6
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
              WITH ORDINALITY AS t(s, d, n, e, r, o)
         ORDER BY o
         ON CONFLICT (source, delivery_id) DO NOTHING
         RETURNING id, source, delivery_id"
    };
}

const INSERT_EVENTS: &str = insert_events!();

/// Events and messages in one statement: the events, then each message of an event whose
/// row went in (joined on its key, `$7`, `$8`), in the order given; its columns `$9`-`$15`.
const INSERT_EVENTS_AND_MESSAGES: &str = concat!(
    "WITH ev AS (",
    insert_events!(),
    "), queued AS (
       INSERT INTO messages (event_id, route, chat, request, status, created_at,
                             next_attempt_at, render_error, op, entity_key, render)
       SELECT ev.id, m.r, m.c, m.q, 'pending', $6, $6, m.re, m.op, m.ek, m.rd
       FROM UNNEST($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                   $13::text[], $14::text[], $15::text[])
            WITH ORDINALITY AS m(s, d, r, c, q, re, op, ek, rd, o)
       JOIN ev ON ev.source = m.s AND ev.delivery_id = m.d
       ORDER BY m.o
     )
     SELECT id, source, delivery_id FROM ev"
);

const INSERT_MESSAGES: &str = "INSERT INTO messages (event_id, route, chat, request, status, created_at, next_attempt_at,
                           render_error, op, entity_key, render)
     SELECT ev, r, c, q, 'pending', $9, $9, re, op, ek, rd
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                 $8::text[])
          WITH ORDINALITY AS t(ev, r, c, q, re, op, ek, rd, o)
     ORDER BY o";

/// The key a stored event is found by (cleaned, as the INSERT returns it).
fn key(source: &str, delivery: &str) -> String {
    format!("{}\u{0}{}", clean(source), clean(delivery))
}

/// The batch's events as columns: the first event of each key, in key order.
struct EventRows {
    /// Index into the batch of each row's event.
    order: Vec<usize>,
    sources: Vec<String>,
    deliveries: Vec<String>,
}

impl EventRows {
    fn of(events: &[NewEvent]) -> EventRows {
        // By the key as stored: ids that differ only by NUL are one row, that of the
        // first of them that came (whose messages and outcome are the inserted ones).
        let keys: Vec<(Cow<'_, str>, Cow<'_, str>)> = events
            .iter()
            .map(|e| (clean(&e.source), clean(&e.delivery_id)))
            .collect();
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|&a, &b| (&keys[a], a).cmp(&(&keys[b], b)));
        order.dedup_by(|later, first| keys[*later] == keys[*first]);
        let (sources, deliveries) = order
            .iter()
            .map(|&i| (keys[i].0.to_string(), keys[i].1.to_string()))
            .unzip();
        EventRows {
            order,
            sources,
            deliveries,
        }
    }

    /// Binds `$1`-`$6` of `INSERT_EVENTS`.
    fn bind<'q>(
        &'q self,
        events: &[NewEvent],
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
        now: i64,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let names: Vec<String> = self
            .order
            .iter()
            .map(|&i| clean(&events[i].name).into_owned())
            .collect();
        let entities: Vec<Option<String>> = self
            .order
            .iter()
            .map(|&i| clean_opt(&events[i].entity))
            .collect();
        let routes: Vec<String> = self
            .order
            .iter()
            .map(|&i| serde_json::to_string(&events[i].routes).unwrap_or_else(|_| "[]".into()))
            .collect();
        query
            .bind(&self.sources)
            .bind(&self.deliveries)
            .bind(names)
            .bind(entities)
            .bind(routes)
            .bind(now)
    }
}

/// The ids of the rows that went in, by key.
fn inserted_ids(rows: &[sqlx::postgres::PgRow]) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut inserted = HashMap::with_capacity(rows.len());
    for r in rows {
        let (id, source, delivery): (i64, String, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        inserted.insert(key(&source, &delivery), id);
    }
    Ok(inserted)
}

/// The columns of the messages an `INSERT` queues, in the order they are bound.
#[derive(Default)]
struct MessageRows<'a> {
    routes: Vec<&'a str>,
    chats: Vec<&'a str>,
    requests: Vec<&'a str>,
    render_errors: Vec<Option<String>>,
    ops: Vec<&'a str>,
    entity_keys: Vec<Option<String>>,
    renders: Vec<Option<&'a str>>,
}

impl<'a> MessageRows<'a> {
    fn push(&mut self, m: &'a NewMessage) {
        self.routes.push(&m.route);
        self.chats.push(&m.chat);
        self.requests.push(&m.request);
        self.render_errors.push(clean_opt(&m.render_error));
        self.ops.push(m.op.as_str());
        self.entity_keys.push(clean_opt(&m.entity_key));
        self.renders.push(m.render.as_deref());
    }

    fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Binds the seven columns as the next seven parameters.
    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.routes)
            .bind(self.chats)
            .bind(self.requests)
            .bind(self.render_errors)
            .bind(self.ops)
            .bind(self.entity_keys)
            .bind(self.renders)
    }
}

impl PgStore {
    pub async fn commit_events(&self, events: &[NewEvent]) -> Result<Vec<Committed>, StoreError> {
        let now = now_ms();
        let rows = EventRows::of(events);
        let mut inserted = if events.iter().all(|e| e.held.is_empty()) {
            self.write_in_one_statement(events, &rows, now).await?
        } else {
            self.write_in_a_transaction(events, &rows, now).await?
        };
        self.outcomes(events, |ev| {
            inserted.remove(&key(&ev.source, &ev.delivery_id))
        })
        .await
    }

    /// Events and their messages in one statement (nothing held back).
    async fn write_in_one_statement(
        &self,
        events: &[NewEvent],
        rows: &EventRows,
        now: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        // The ids are not known yet: each message joins its event's row by the stored
        // key, which is also what makes two keys that differ only by NUL one event.
        let queue = messages_to_queue(events, |ev| {
            Some((clean(&ev.source), clean(&ev.delivery_id)))
        });
        let (mut sources, mut deliveries) = (vec![], vec![]);
        let mut messages = MessageRows::default();
        for ((source, delivery), m) in &queue {
            sources.push(&**source);
            deliveries.push(&**delivery);
            messages.push(m);
        }
        let query = rows
            .bind(events, sqlx::query(INSERT_EVENTS_AND_MESSAGES), now)
            .bind(sources)
            .bind(deliveries);
        let written = messages.bind(query).fetch_all(&self.pool).await?;
        Ok(inserted_ids(&written)?)
    }

    /// Events, messages and held items in one transaction.
    async fn write_in_a_transaction(
        &self,
        events: &[NewEvent],
        rows: &EventRows,
        now: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = rows
            .bind(events, sqlx::query(INSERT_EVENTS), now)
            .fetch_all(&mut *tx)
            .await?;
        let inserted = inserted_ids(&written)?;
        let mut ev_ids = Vec::new();
        let mut messages = MessageRows::default();
        let queue = messages_to_queue(events, |ev| {
            inserted.get(&key(&ev.source, &ev.delivery_id)).copied()
        });
        for (id, m) in queue {
            ev_ids.push(id);
            messages.push(m);
        }
        if !messages.is_empty() {
            messages
                .bind(sqlx::query(INSERT_MESSAGES).bind(ev_ids))
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        insert_held(&mut tx, events, &inserted, now).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Per event of a written batch: `Inserted` for the event that got the row
    /// (`take_id` hands each new row's id out once, so a second event with the same key
    /// in the batch is a duplicate), else `Duplicate` with the routes it matched first.
    async fn outcomes<'e>(
        &self,
        events: &'e [NewEvent],
        mut take_id: impl FnMut(&'e NewEvent) -> Option<i64>,
    ) -> Result<Vec<Committed>, StoreError> {
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            out.push(match take_id(ev) {
                Some(event_id) => Committed::Inserted {
                    event_id,
                    messages: ev.messages.len(),
                    held: ev.held.len(),
                },
                None => {
                    let prev: Option<String> = sqlx::query_scalar(
                        "SELECT routes FROM events WHERE source = $1 AND delivery_id = $2",
                    )
                    .bind(clean(&ev.source))
                    .bind(clean(&ev.delivery_id))
                    .fetch_optional(&self.pool)
                    .await?;
                    let routes = prev.and_then(|r| serde_json::from_str(&r).ok());
                    Committed::Duplicate {
                        routes: routes.unwrap_or_default(),
                    }
                }
            });
        }
        Ok(out)
    }
}

/// Inside the commit transaction: the held items of the events that were inserted (a
/// duplicate delivery holds nothing back). Same rules as SQLite's `insert_held`.
async fn insert_held(
    conn: &mut PgConnection,
    events: &[NewEvent],
    inserted: &HashMap<String, i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut done = HashSet::new();
    let mut held: Vec<(i64, &HeldItem)> = Vec::new();
    for ev in events.iter().filter(|e| !e.held.is_empty()) {
        let key = key(&ev.source, &ev.delivery_id);
        let Some(&event_id) = inserted.get(&key) else {
            continue;
        };
        if !done.insert(key) {
            continue;
        }
        held.extend(ev.held.iter().map(|h| (event_id, h)));
    }
    // Groups are locked in (route, key) order, as events are in key order: two
    // replicas' batches never wait on each other in a cycle. Stable, so a group's items
    // keep the order their events came in.
    held.sort_by(|(_, a), (_, b)| (&a.route, clean(&a.key)).cmp(&(&b.route, clean(&b.key))));
    for (event_id, h) in held {
        let group_id: i64 = sqlx::query_scalar(
            "INSERT INTO groups (route, key, spec, flush_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (route, key) DO UPDATE SET spec = excluded.spec,
               flush_at = CASE
                 WHEN $5::bigint IS NOT NULL THEN LEAST(groups.flush_at, $5)
                 WHEN groups.flush_at IS NOT NULL THEN groups.flush_at
                 WHEN groups.last_flush_at IS NULL THEN $7
                 ELSE GREATEST($6, groups.last_flush_at + $8) END
             RETURNING id",
        )
        .bind(&h.route)
        .bind(clean(&h.key))
        .bind(&h.spec)
        .bind(h.flush_at.unwrap_or(now.saturating_add(h.wait_ms)))
        .bind(h.flush_at)
        .bind(now)
        .bind(now.saturating_add(h.wait_ms))
        // PostgreSQL errors on overflow where SQLite goes to float: keep the sum in range.
        .bind(h.interval_ms.min(i64::MAX / 2))
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO group_items (group_id, event_id, fingerprint, item, received_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(group_id)
        .bind(event_id)
        .bind(clean(&h.fingerprint))
        .bind(&h.item)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
