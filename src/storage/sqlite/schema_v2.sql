-- Schema version 2: message lifecycle per entity, grouping, silences.
-- Applied once, in one transaction, by storage::migrate, after version 1.

-- `post`: chat.post the request. `upsert`: the first message about `entity_key` is
-- posted (with sync, to learn its timestamp); later ones edit it with chat.update.
ALTER TABLE messages ADD COLUMN op TEXT NOT NULL DEFAULT 'post';
ALTER TABLE messages ADD COLUMN entity_key TEXT;

-- Which Roam message stands for an entity on a route and chat: the target of chat.update.
CREATE TABLE entity_messages (
    entity_key  TEXT    PRIMARY KEY,   -- route NUL chat NUL entity
    chat        TEXT    NOT NULL,
    timestamp   INTEGER NOT NULL,      -- Roam's message timestamp (µs)
    updated_at  INTEGER NOT NULL
);

-- Per-route groups of events waiting to go out as one message (`group_by`, dedup,
-- `max_messages`, mute summaries). `spec` is the route's settings when the last item
-- arrived, so a reload or a removed route never strands a pending group.
CREATE TABLE groups (
    id             INTEGER PRIMARY KEY,
    route          TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    spec           TEXT    NOT NULL,
    flush_at       INTEGER,            -- unix ms; NULL when nothing is pending
    last_flush_at  INTEGER,
    UNIQUE (route, key)
);
CREATE INDEX groups_due ON groups (flush_at) WHERE flush_at IS NOT NULL;

CREATE TABLE group_items (
    id           INTEGER PRIMARY KEY,
    group_id     INTEGER NOT NULL REFERENCES groups (id),
    event_id     INTEGER NOT NULL,
    fingerprint  TEXT    NOT NULL,
    item         TEXT    NOT NULL,     -- JSON: title, text, event, status, entity
    received_at  INTEGER NOT NULL
);
CREATE INDEX group_items_group ON group_items (group_id, id);
CREATE INDEX group_items_event ON group_items (event_id);

-- When a fingerprint last went out on a route: `repeat_interval` deduplication.
CREATE TABLE fingerprints (
    route        TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    sent_at      INTEGER NOT NULL,
    PRIMARY KEY (route, fingerprint)
) WITHOUT ROWID;

-- `max_messages` budget per route: messages flushed in the current window.
CREATE TABLE route_windows (
    route         TEXT    PRIMARY KEY,
    window_start  INTEGER NOT NULL,
    sent          INTEGER NOT NULL
);

-- Silences added with `roam-notify silence add` (config silences live in the config).
CREATE TABLE silences (
    id          INTEGER PRIMARY KEY,
    matcher     TEXT    NOT NULL,      -- JSON: source, events, routes, when
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    comment     TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expired     INTEGER NOT NULL DEFAULT 0
);

DROP TRIGGER events_enqueue;
CREATE TRIGGER events_enqueue AFTER INSERT ON events
WHEN NEW.outbox IS NOT NULL
BEGIN
    INSERT INTO messages (event_id, route, chat, request, status, created_at, next_attempt_at, render_error, op, entity_key)
    SELECT NEW.id,
           json_extract(value, '$.route'),
           json_extract(value, '$.chat'),
           json_extract(value, '$.request'),
           'pending',
           NEW.received_at,
           NEW.received_at,
           json_extract(value, '$.render_error'),
           COALESCE(json_extract(value, '$.op'), 'post'),
           json_extract(value, '$.entity_key')
    FROM json_each(NEW.outbox)
    ORDER BY key;
    UPDATE events SET outbox = NULL WHERE id = NEW.id;
END;
