-- Schema version 5 (SQLite and PostgreSQL alike): the directory cache.

-- What Roam told us names and emails stand for, so a restart while Roam is down still
-- knows them. kind 'chat': key = the chat id, label = its name (chat.list), grp = its
-- group id; kind 'user': key = the email (lowercase), id = the user id (user.lookup).
-- seen_at (unix ms) is when Roam last confirmed it; rows are kept when Roam stops
-- listing them, so a name that no longer resolves keeps its last known id.
CREATE TABLE directory (
    kind     TEXT   NOT NULL,
    key      TEXT   NOT NULL,
    id       TEXT   NOT NULL,
    label    TEXT   NOT NULL,
    grp      TEXT,
    chat_kind TEXT,
    seen_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
