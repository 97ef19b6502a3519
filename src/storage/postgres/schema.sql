-- PostgreSQL schema, version 3 (the same tables as SQLite's versions 1-3), plus what
-- several replicas sharing one database need: claims with leases on messages, leader
-- leases, and the shared Roam rate limit. Applied once, in one transaction, under an
-- advisory lock, by storage::postgres::migrate.

-- Every accepted event. (source, delivery_id) is unique: a sender's redelivery is a
-- duplicate and produces no second message, whichever replica it reaches.
CREATE TABLE events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       TEXT   NOT NULL,
    delivery_id  TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    entity       TEXT,
    routes       TEXT   NOT NULL,  -- JSON array of the route names it matched
    received_at  BIGINT NOT NULL,  -- unix milliseconds
    UNIQUE (source, delivery_id)
);

-- The outbox. A replica claims a message (status `claimed`, `claimed_by`, `lease_until`)
-- before it sends it, then marks it `sending`; a claim whose lease ran out (the replica
-- died) is taken over by another replica. `lease_until` is in the database's clock, so
-- replicas with skewed clocks agree on it.
CREATE TABLE messages (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         BIGINT  NOT NULL REFERENCES events (id),
    route            TEXT    NOT NULL,
    chat             TEXT    NOT NULL,
    request          TEXT    NOT NULL,
    status           TEXT    NOT NULL,  -- pending | claimed | sending | delivered | dead | dropped
    attempts         BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    last_error       TEXT,
    delivered_at     BIGINT,
    maybe_duplicate  BOOLEAN NOT NULL DEFAULT false,
    render_error     TEXT,
    op               TEXT    NOT NULL DEFAULT 'post',
    entity_key       TEXT,
    claimed_by       TEXT,
    lease_until      BIGINT
);
CREATE INDEX messages_unsent ON messages (chat, id) WHERE status IN ('pending', 'claimed', 'sending');
CREATE INDEX messages_status ON messages (status);
CREATE INDEX messages_event ON messages (event_id);

CREATE TABLE entity_messages (
    entity_key  TEXT   PRIMARY KEY,
    chat        TEXT   NOT NULL,
    timestamp   BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX entity_messages_updated ON entity_messages (updated_at);

CREATE TABLE groups (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route          TEXT   NOT NULL,
    key            TEXT   NOT NULL,
    spec           TEXT   NOT NULL,
    flush_at       BIGINT,
    last_flush_at  BIGINT,
    UNIQUE (route, key)
);
CREATE INDEX groups_due ON groups (flush_at) WHERE flush_at IS NOT NULL;

CREATE TABLE group_items (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id     BIGINT NOT NULL REFERENCES groups (id),
    event_id     BIGINT NOT NULL,
    fingerprint  TEXT   NOT NULL,
    item         TEXT   NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX group_items_group ON group_items (group_id, id);
CREATE INDEX group_items_event ON group_items (event_id);

CREATE TABLE fingerprints (
    route        TEXT   NOT NULL,
    fingerprint  TEXT   NOT NULL,
    sent_at      BIGINT NOT NULL,
    PRIMARY KEY (route, fingerprint)
);

CREATE TABLE route_windows (
    route         TEXT   PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    sent          BIGINT NOT NULL
);

CREATE TABLE silences (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    matcher     TEXT    NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT  NOT NULL,
    comment     TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expired     BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE transcript_queue (
    id          TEXT   PRIMARY KEY,
    queued_at   BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT
);

CREATE TABLE transcript_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Leases: `name` is held by `holder` until `until` (database clock, unix ms). `tick` is
-- the last scheduled run of job `name` that a replica claimed (each runs once).
CREATE TABLE leases (
    name    TEXT   PRIMARY KEY,
    holder  TEXT   NOT NULL DEFAULT '',
    until   BIGINT NOT NULL DEFAULT 0,
    tick    BIGINT NOT NULL DEFAULT 0
);

-- The Roam rate limit every replica shares: a token bucket updated atomically per
-- request, and the pause a 429 imposes on all of them.
CREATE TABLE roam_pacer (
    name          TEXT             PRIMARY KEY,
    tokens        DOUBLE PRECISION NOT NULL,
    updated_at    BIGINT           NOT NULL,  -- database clock, unix ms
    paused_until  BIGINT           NOT NULL DEFAULT 0
);
