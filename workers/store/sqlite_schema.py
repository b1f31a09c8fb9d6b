"""Tables, indexes and connection settings of the embedded SQLite store.

The settings were chosen with ``bench/store_bench.py`` (random SHA3 keys, batches of 1,000
associations with their job items); see that module for the figures. With random keys every
row dirties one leaf page of each B-tree keyed by a hash, and each commit writes its dirty
pages to the WAL (then once more at checkpoint), so the layout keeps those trees few and small:

- ``associations`` is a rowid table: rows are appended in ``seq`` order, only the three narrow
  indexes (``id``, ``entity_id``, ``related_id``) take random inserts. Pages of edges at one end
  are read in ``seq`` order straight from those indexes (they end with the rowid), so the
  cursor is a ``seq`` and no index carries the 64-character association ID twice.
  (Measured against ``WITHOUT ROWID`` keyed by the association ID: about 1.3x faster and 15%
  smaller at 200k rows.)
- 8 KiB pages: the best of 4/8/16 KiB measured both on an empty file and at 1.1M rows (larger
  pages win while the trees are small, smaller ones once every row dirties its own pages).
"""

from __future__ import annotations

import sqlite3

PAGE_SIZE = 8192
"""Set before the first table exists; larger pages keep the random-key B-trees shallower."""

CACHE_KIB = 64 * 1024
"""Page cache per connection: the upper levels of every index stay in memory."""

MMAP_BYTES = 256 * 1024 * 1024
"""Reads of pages outside the cache go through the OS page cache without a copy."""

WAL_AUTOCHECKPOINT_PAGES = 8192
"""Checkpoint about every 64 MiB of WAL instead of every 4 MiB: fewer, larger copies."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    attributes TEXT NOT NULL,
    reputation INTEGER,
    tags TEXT NOT NULL,
    visible_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS associations (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    entity_id TEXT NOT NULL,
    related_id TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    related_type TEXT NOT NULL,
    association_types TEXT NOT NULL,
    file_action INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    submissions INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS associations_entity ON associations (entity_id);
CREATE INDEX IF NOT EXISTS associations_related ON associations (related_id);

CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    groups TEXT NOT NULL,
    total INTEGER NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_created_at ON jobs (created_at);

CREATE TABLE IF NOT EXISTS job_items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    message TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY NOT NULL,
    secret_digest TEXT NOT NULL,
    user_id TEXT NOT NULL,
    roles TEXT NOT NULL,
    groups TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS custom_types (
    name TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
    primary_kind TEXT NOT NULL,
    non_primary TEXT NOT NULL,
    file_action INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""


def configure(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Apply the per-connection settings and switch the file to WAL (persistent)."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    # page_size only takes effect on a file with no table yet, before WAL is on.
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    # In WAL, NORMAL loses no committed transaction when the process crashes; only a power
    # loss or OS crash may roll back the last transactions (never corrupts the file).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA foreign_keys = OFF")


def create_tables(conn: sqlite3.Connection) -> None:
    """Create every table and index that does not exist yet (inside the caller's transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
