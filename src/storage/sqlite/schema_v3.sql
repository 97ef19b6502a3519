-- Schema version 3: transcript processing.

-- Transcripts Roam announced by webhook (transcript:saved), waiting to be fetched and
-- turned into an event. A row leaves once its event is committed (or was already).
CREATE TABLE transcript_queue (
    id          TEXT    PRIMARY KEY,   -- transcript uuid
    queued_at   INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);

-- Sweep state: `checkpoint` (RFC 3339: transcripts starting before it were all handled),
-- `last_run_at` (unix ms), `last_run_ok` ("1"/"0").
CREATE TABLE transcript_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
