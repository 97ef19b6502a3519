//! Reading rows into the storage types, once for both backends. The backends differ
//! only in how a flag is stored (SQLite: 0/1 integer; PostgreSQL: boolean).

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::{
    DirEntry, DueGroup, MessageOp, MessageRecord, OutboxMessage, QueuedTranscript, Silence,
    StoredItem,
};

/// Typed column access by position.
pub(crate) trait Cols {
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error>;
    fn text(&self, i: usize) -> Result<String, sqlx::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error>;
    fn flag(&self, i: usize) -> Result<bool, sqlx::Error>;
}

macro_rules! cols {
    ($row:ty, |$r:ident, $i:ident| $flag:expr) => {
        impl Cols for $row {
            fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
                self.try_get(i)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(i)
            }
            fn text(&self, i: usize) -> Result<String, sqlx::Error> {
                self.try_get(i)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
                self.try_get(i)
            }
            fn flag(&self, $i: usize) -> Result<bool, sqlx::Error> {
                let $r = self;
                $flag
            }
        }
    };
}

cols!(SqliteRow, |r, i| Ok(r.try_get::<i64, _>(i)? != 0));
cols!(PgRow, |r, i| r.try_get::<bool, _>(i));

/// Columns: id, status, chat, route, event name, source, delivery_id, attempts, created_at,
/// next_attempt_at, delivered_at, last_error, render_error, maybe_duplicate, request, render.
pub(crate) const RECORD_COLUMNS: &str =
    "m.id, m.status, m.chat, m.route, e.name, e.source, e.delivery_id, m.attempts, m.created_at,
    m.next_attempt_at, m.delivered_at, m.last_error, m.render_error, m.maybe_duplicate, m.request, m.render";

pub(crate) fn record(r: &impl Cols) -> Result<MessageRecord, sqlx::Error> {
    Ok(MessageRecord {
        id: r.int(0)?,
        status: r.text(1)?,
        chat: r.text(2)?,
        route: r.text(3)?,
        event: r.text(4)?,
        source: r.text(5)?,
        delivery_id: r.text(6)?,
        attempts: r.int(7)?,
        created_at: r.int(8)?,
        next_attempt_at: r.int(9)?,
        delivered_at: r.opt_int(10)?,
        last_error: r.opt_text(11)?,
        render_error: r.opt_text(12)?,
        maybe_duplicate: r.flag(13)?,
        request: r.text(14)?,
        render: r.opt_text(15)?,
    })
}

/// Columns: id, chat, route, request, attempts, created_at, maybe_duplicate, op,
/// entity_key, source, delivery_id, render.
pub(crate) fn outbox_message(r: &impl Cols) -> Result<OutboxMessage, sqlx::Error> {
    Ok(OutboxMessage {
        id: r.int(0)?,
        chat: r.text(1)?,
        route: r.text(2)?,
        request: r.text(3)?,
        attempts: r.int(4)?,
        created_at: r.int(5)?,
        maybe_duplicate: r.flag(6)?,
        op: MessageOp::parse(&r.text(7)?),
        entity_key: r.opt_text(8)?,
        source: r.text(9)?,
        delivery_id: r.text(10)?,
        render: r.opt_text(11)?,
    })
}

/// Columns: id, route, key, spec.
pub(crate) fn due_group(r: &impl Cols) -> Result<DueGroup, sqlx::Error> {
    Ok(DueGroup {
        id: r.int(0)?,
        route: r.text(1)?,
        key: r.text(2)?,
        spec: r.text(3)?,
    })
}

/// Columns: id, group_id, event_id, fingerprint, item.
pub(crate) fn stored_item(r: &impl Cols) -> Result<StoredItem, sqlx::Error> {
    Ok(StoredItem {
        id: r.int(0)?,
        group_id: r.int(1)?,
        event_id: r.int(2)?,
        fingerprint: r.text(3)?,
        item: r.text(4)?,
    })
}

/// Columns: id, matcher, starts_at, ends_at, comment, created_by, created_at, expired.
pub(crate) fn silence(r: &impl Cols) -> Result<Silence, sqlx::Error> {
    Ok(Silence {
        id: r.int(0)?,
        matcher: r.text(1)?,
        starts_at: r.int(2)?,
        ends_at: r.int(3)?,
        comment: r.text(4)?,
        created_by: r.text(5)?,
        created_at: r.int(6)?,
        expired: r.flag(7)?,
    })
}

/// Columns: id, attempts.
pub(crate) fn dir_entry(r: &impl Cols) -> Result<DirEntry, sqlx::Error> {
    Ok(DirEntry {
        kind: r.text(0)?,
        key: r.text(1)?,
        id: r.text(2)?,
        label: r.text(3)?,
        group: r.opt_text(4)?,
        chat_kind: r.opt_text(5)?,
        seen_at: r.int(6)?,
    })
}

pub(crate) fn queued_transcript(r: &impl Cols) -> Result<QueuedTranscript, sqlx::Error> {
    Ok(QueuedTranscript {
        id: r.text(0)?,
        attempts: r.int(1)?,
    })
}
