-- Schema version 1. Applied once, in one transaction, by storage::migrate.

-- Every accepted event. (source, delivery_id) is unique: a sender's redelivery is a
-- duplicate and produces no second message. Payloads are not kept: the rendered
-- messages are (a webhook body is ~10x the size of its message, and every byte
-- written here is written twice, to the WAL and to the database).
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,
    delivery_id  TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    entity       TEXT,
    routes       TEXT    NOT NULL,  -- JSON array of the route names it matched
    received_at  INTEGER NOT NULL,  -- unix milliseconds
    outbox       TEXT,              -- messages to queue (JSON), moved out by events_enqueue
    UNIQUE (source, delivery_id)
);

-- The outbox: one row per (event, route, destination). `request` is the exact
-- chat.post JSON body. Rows are sent oldest first per chat.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    route            TEXT    NOT NULL,
    chat             TEXT    NOT NULL,
    request          TEXT    NOT NULL,
    status           TEXT    NOT NULL,  -- pending | sending | delivered | dead
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    delivered_at     INTEGER,
    maybe_duplicate  INTEGER NOT NULL DEFAULT 0,
    render_error     TEXT
);

-- Unsent messages by chat: the delivery worker walks it to find each chat's oldest
-- unsent message in O(chats), however long the backlog (see `heads!` in sqlite/mod.rs).
CREATE INDEX messages_unsent ON messages (chat, id) WHERE status IN ('pending', 'sending');
CREATE INDEX messages_status ON messages (status);

-- Queues an event's messages within the statement that records the event, so accepting
-- a batch of webhooks is one atomic INSERT: one round trip, one fsync. A redelivery hits
-- the UNIQUE conflict, is not inserted, and so queues nothing.
CREATE TRIGGER events_enqueue AFTER INSERT ON events
WHEN NEW.outbox IS NOT NULL
BEGIN
    INSERT INTO messages (event_id, route, chat, request, status, created_at, next_attempt_at, render_error)
    SELECT NEW.id,
           json_extract(value, '$.route'),
           json_extract(value, '$.chat'),
           json_extract(value, '$.request'),
           'pending',
           NEW.received_at,
           NEW.received_at,
           json_extract(value, '$.render_error')
    FROM json_each(NEW.outbox)
    ORDER BY key;
    UPDATE events SET outbox = NULL WHERE id = NEW.id;
END;
