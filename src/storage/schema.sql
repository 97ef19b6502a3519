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

CREATE INDEX messages_queue ON messages (status, chat, id);
