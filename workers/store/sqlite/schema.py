"""Tables, indexes and connection settings of the embedded SQLite store.

The settings were chosen with ``bench/store_bench.py`` (random SHA3 keys, batches of 1,000
associations with their job items; figures in ``bench/design-measurements.md``). With random
keys every new row dirties one leaf page of each B-tree keyed by a hash, and each commit writes
its dirty pages to the WAL (then once more at checkpoint). What a commit costs is therefore the
number of leaf pages of the hash-keyed trees it dirties, and the layout keeps those trees as
small as possible:

- ``associations`` is a rowid table: rows are appended in ``seq`` order. The three hash-keyed
  indexes (association ID, entity ID, related entity ID) hold only a 64-bit integer taken from
  the ID (``key64``) plus the rowid, about 16 bytes an entry instead of about 80 for the text
  IDs, so a tree has a fifth of the leaf pages and a batch dirties far fewer of them. An index
  is only a filter: every lookup also compares the full ID stored in the row, so two IDs that
  share 64 bits (``domain-<h>`` and ``hostname-<h>`` do) are never confused. Uniqueness per
  association ID is kept by the writer, which reads before it writes under the write lock
  (``BEGIN IMMEDIATE``), not by a UNIQUE index. Pages of edges at one end are read in ``seq``
  order straight from the index (its entries end with the rowid), so the cursor is a ``seq``.
  The integer keys write the fewest bytes and rows per second of the layouts measured
  (``bench/design-measurements.md``).
- 8 KiB pages: 4 KiB and 2 KiB pages write fewer bytes per dirty page but dirty more pages
  and cost more CPU; with the integer keys 4 KiB and 8 KiB measured the same, 2 KiB worse.
- ``wal_autocheckpoint`` of 32,768 pages (256 MiB of WAL): a page changed by many commits is
  copied to the database once per checkpoint, so fewer checkpoints copy fewer pages.
"""

from __future__ import annotations

import hashlib
import sqlite3
from functools import lru_cache
from typing import Any

import orjson

from workers.store.records import SourceEntry
from workers.store.sources import source_document, source_from_document

PAGE_SIZE = 8192
"""Set before the first table exists; larger pages keep the random-key B-trees shallower."""

CACHE_KIB = 64 * 1024
"""Page cache per connection: the upper levels of every index stay in memory."""

MMAP_BYTES = 256 * 1024 * 1024
"""Reads of pages outside the cache go through the OS page cache without a copy."""

WAL_AUTOCHECKPOINT_PAGES = 32768
"""Checkpoint about every 256 MiB of WAL instead of every 4 MiB: fewer, larger copies."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    attributes TEXT NOT NULL,
    reputation INTEGER,
    tags TEXT NOT NULL,
    visible_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    sources TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS associations (
    seq INTEGER PRIMARY KEY,
    id_key INTEGER NOT NULL,
    entity_key INTEGER NOT NULL,
    related_key INTEGER NOT NULL,
    id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    related_id TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    related_type TEXT NOT NULL,
    association_types TEXT NOT NULL,
    file_action INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    submissions INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    sources TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS associations_id_key ON associations (id_key);
CREATE INDEX IF NOT EXISTS associations_entity_key ON associations (entity_key);
CREATE INDEX IF NOT EXISTS associations_related_key ON associations (related_key);

CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    groups TEXT NOT NULL,
    total INTEGER NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_created_at ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, job_id);

CREATE TABLE IF NOT EXISTS job_items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    message TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS job_waiting (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    entities TEXT NOT NULL,
    since REAL NOT NULL,
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

CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at ON idempotency_keys (expires_at);

CREATE TABLE IF NOT EXISTS custom_types (
    name TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
    primary_kind TEXT NOT NULL,
    non_primary TEXT NOT NULL,
    file_action INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""


_SIGN = 1 << 63
_COLUMNS = (
    "id, entity_id, related_id, entity_type, related_type, association_types, file_action,"
    " created_at, last_seen, submissions, created_by, sources"
)


def dumps(value: Any) -> str:
    """JSON text as stored in TEXT columns."""
    return orjson.dumps(value).decode()


@lru_cache(maxsize=4096)
def dump_sources(entries: tuple[SourceEntry, ...]) -> str:
    """The ``sources`` column of ``entries`` (cached: most rows share a few source lists)."""
    return dumps([source_document(entry) for entry in entries])


@lru_cache(maxsize=4096)
def load_sources(text: str) -> tuple[SourceEntry, ...]:
    """The entries a ``sources`` column holds (cached, like ``dump_sources``)."""
    return tuple(source_from_document(document) for document in orjson.loads(text))


def key64(text: str) -> int:
    """The 64-bit index key of an ID: its last 16 hex digits (the end of its SHA3 hash) as a
    signed integer, or for text that does not end in hex digits the start of its BLAKE2b hash.

    Deterministic across processes and versions (it is stored); IDs that share a key are told
    apart by the full ID kept in the row.
    """
    try:
        value = int(text[-16:], 16)
    except ValueError:
        value = -1
    if value < 0:
        value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    return value - _SIGN


def configure(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Apply the per-connection settings and switch the file to WAL (persistent)."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    # page_size only takes effect on a file with no table yet, before WAL is on.
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    # A worker acks a message once its batch is committed, so a commit must survive a power
    # loss or an OS crash too: in WAL, FULL syncs the log on every commit (NORMAL syncs only at
    # checkpoints and may roll back the last commits). Its cost: bench/design-measurements.md.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA foreign_keys = OFF")


def create_tables(conn: sqlite3.Connection) -> None:
    """Create every table and index that does not exist yet (inside the caller's transaction);
    an ``associations`` table of the earlier layout (text indexes, no keys) is converted, and
    tables written before sources were kept get an empty ``sources`` column."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(associations)")}
    legacy = bool(columns) and "id_key" not in columns
    if legacy:
        conn.execute("ALTER TABLE associations RENAME TO associations_legacy")
    for table in ("entities", "associations_legacy" if legacy else "associations"):
        existing = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if existing and "sources" not in existing:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN sources TEXT NOT NULL DEFAULT '[]'")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    if legacy:
        conn.create_function("key64", 1, key64, deterministic=True)
        conn.execute(
            f"INSERT INTO associations (seq, id_key, entity_key, related_key, {_COLUMNS})"
            f" SELECT seq, key64(id), key64(entity_id), key64(related_id), {_COLUMNS}"
            " FROM associations_legacy ORDER BY seq"
        )
        conn.execute("DROP TABLE associations_legacy")
