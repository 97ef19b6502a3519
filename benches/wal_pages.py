#!/usr/bin/env python3
"""WAL pages per accepted batch, by what the schema indexes (docs/performance.md).

In WAL mode SQLite appends every page a transaction changed, whole, to the WAL (and a
checkpoint later writes it again into the database), so the pages a commit touches are
what it costs the disk. This counts them for the daemon's own SQLite schema: it has the
built binary migrate an empty database (`roam-notify silence list` opens the store),
fills a copy with EVENTS accepted webhooks in batches of BATCH (each event one message
of a 611-byte `chat.post` body, the size of the GitHub push card), then commits COMMITS
more batches with automatic checkpoints off and divides the WAL's growth by the frame
size. It repeats this with the schema as it is and with each index dropped in turn, to
show what each one costs a commit.

    python3 benches/wal_pages.py        (ROAM_NOTIFY_BIN=path: another build's schema;
                                         EVENTS=100000 BATCH=6 COMMITS=2000)

Python's own sqlite3 module runs the statements (its SQLite is not the bundled one, but a
B-tree changes the same pages in both); timings are left out on purpose: the interpreter's
share would drown them, and the daemon's req/s is measured by benches/compare.
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid

EVENTS = int(os.environ.get("EVENTS", 100_000))
BATCH = int(os.environ.get("BATCH", 6))
COMMITS = int(os.environ.get("COMMITS", 2_000))
REQUEST = '{"chat":"G-88bebce7-6cbb-4666-96f9-5c02d73e6661","text":"' + "x" * 552 + '"}'

# Each variant: its label and the statements that turn the daemon's schema into it.
VARIANTS = [
    ("as shipped", []),
    ("without messages_status", ["DROP INDEX messages_status"]),
    ("without messages_unsent", ["DROP INDEX messages_unsent"]),
    # SQLite cannot drop a UNIQUE constraint: the table is made again without it.
    ("without UNIQUE (source, delivery_id)", [
        "ALTER TABLE events RENAME TO events_old",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, source TEXT NOT NULL, "
        "delivery_id TEXT NOT NULL, name TEXT NOT NULL, entity TEXT, routes TEXT NOT NULL, "
        "received_at INTEGER NOT NULL, outbox TEXT)",
        "DROP TABLE events_old",
    ]),
]


def migrated_schema(work):
    binary = os.environ.get("ROAM_NOTIFY_BIN", "target/release/roam-notify")
    if not os.access(binary, os.X_OK):
        sys.exit(f"error: no binary at {binary} (cargo build --release, or set ROAM_NOTIFY_BIN)")
    path = os.path.join(work, "schema.db")
    env = dict(os.environ, ROAM_NOTIFY__STORAGE__URL=f"sqlite://{path}")
    subprocess.run([binary, "silence", "list"], env=env, check=True, stdout=subprocess.DEVNULL)
    return path


def batch(db, unique):
    db.execute("BEGIN IMMEDIATE")
    for _ in range(BATCH):
        on_conflict = "ON CONFLICT (source, delivery_id) DO NOTHING " if unique else ""
        (event_id,) = db.execute(
            "INSERT INTO events (source, delivery_id, name, entity, routes, received_at) "
            f"VALUES (?, ?, 'github.push', 'acme/widgets', '[\"pushes\"]', 1) {on_conflict}RETURNING id",
            ("github", str(uuid.uuid4())),
        ).fetchone()
        db.execute(
            "INSERT INTO messages (event_id, route, chat, request, status, created_at, "
            "next_attempt_at, op) VALUES (?, 'pushes', 'G-1', ?, 'pending', 1, 1, 'post')",
            (event_id, REQUEST),
        )
    db.execute("COMMIT")


def pages_per_commit(schema_db, work, changes):
    path = os.path.join(work, "variant.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    with open(schema_db, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    for sql in changes:
        db.execute(sql)
    unique = not any("events_old" in sql for sql in changes)
    for _ in range(EVENTS // BATCH):
        batch(db, unique)
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    for _ in range(COMMITS):
        batch(db, unique)
    frames = os.path.getsize(path + "-wal") / (page + 24)
    db.close()
    return frames / COMMITS


def main():
    with tempfile.TemporaryDirectory() as work:
        schema_db = migrated_schema(work)
        print(f"{EVENTS} events stored, then {COMMITS} commits of {BATCH} events with one message each")
        for label, changes in VARIANTS:
            print(f"  {label:40} {pages_per_commit(schema_db, work, changes):5.1f} WAL pages per commit")


if __name__ == "__main__":
    main()
