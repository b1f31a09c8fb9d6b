"""Write transactions of the embedded store: taking the write lock, group commit.

- A transaction's cost is dominated by the leaf pages its random-key inserts dirty, and a page
  dirtied by 4,000 rows costs no more than one dirtied by 1,000, so the store writes every batch
  waiting when a transaction starts in that one transaction, up to ``GROUP_MAX_ITEMS`` items.
- The write lock is polled every millisecond instead of through SQLite's busy handler, which
  sleeps up to 100 ms between tries, so a second worker process takes the lock between two
  transactions of the first instead of sleeping through them.

The measurements behind both choices are in ``bench/design-measurements.md``.
"""

from __future__ import annotations

import sqlite3
import time

from workers.store.records import AfterEffects, BatchResult, WriteBatch
from workers.store.sqlite.batch import apply_batch

GROUP_MAX_ITEMS = 20_000
"""Items (of all kinds) one group commit carries at most; a larger batch goes alone."""

BUG_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
"""Errors of this package's own SQL, not of an unavailable store."""


def is_busy(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


def group_size(batches: list[WriteBatch]) -> int:
    """How many of the leading ``batches`` (at least one) the next transaction carries."""
    count = items = 0
    for batch in batches:
        items += len(batch.edges) + len(batch.deletes) + len(batch.entities)
        items += len(batch.preset) + len(batch.waiting)
        if count and items > GROUP_MAX_ITEMS:
            break
        count += 1
    return count


def begin_immediate(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Take the write lock (``BEGIN IMMEDIATE``), trying every millisecond for up to
    ``busy_timeout_ms``; raises the busy ``OperationalError`` after that. The connection's own
    ``busy_timeout`` is off meanwhile and restored afterwards."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.001)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


def apply_group(
    conn: sqlite3.Connection,
    batches: list[WriteBatch],
    after_effects: AfterEffects | None = None,
) -> list[BatchResult | Exception]:
    """Apply ``batches`` in order inside the caller's transaction, one savepoint each: a batch
    that fails alone (``after_effects`` raising included) is rolled back alone and its error
    returned in its place."""
    results: list[BatchResult | Exception] = []
    for batch in batches:
        conn.execute("SAVEPOINT batch")
        try:
            results.append(apply_batch(conn, batch, after_effects))
        except sqlite3.Error as exc:
            if not isinstance(exc, BUG_ERRORS):
                raise  # busy, I/O, corruption: the whole transaction is retried or fails
            conn.execute("ROLLBACK TO batch")
            results.append(exc)
        except Exception as exc:
            conn.execute("ROLLBACK TO batch")
            results.append(exc)
        conn.execute("RELEASE batch")
    return results
