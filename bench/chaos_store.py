"""Direct access to the embedded store's SQLite file, from outside the pipeline.

The chaos scenario needs what no ``Store`` method gives: a lock held by a foreign connection
(``BEGIN EXCLUSIVE``: every other writer gets ``SQLITE_BUSY``; in WAL mode readers go on), and
a raw read of the tables after every process has stopped, to count records without trusting
the code under test. This is the one bench module that imports ``sqlite3``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["StoreContent", "hold_exclusive_lock", "read_store"]


def hold_exclusive_lock(path: Path, seconds: float) -> tuple[float, float]:
    """Hold ``BEGIN EXCLUSIVE`` on the database at ``path`` for ``seconds`` (blocking).

    Waits up to 60 s for a writer in progress to finish first; returns the wall-clock times
    (``time.time()``) at which the lock was taken and released.
    """
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        taken = time.time()
        try:
            time.sleep(seconds)
        finally:
            conn.execute("ROLLBACK")
        return taken, time.time()
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class StoreContent:
    associations: dict[str, tuple[str, str, int, str]]
    """id -> (entity_id, related_id, submissions, association_types JSON)."""
    association_rows: int
    """Rows of the table (equal to ``len(associations)`` unless a key repeats)."""
    entities: set[str]
    entity_rows: int
    jobs: dict[str, int]
    """job_id -> total."""
    outcomes: dict[tuple[str, int], tuple[str, str | None]]
    """(job_id, index) -> (outcome, rejection code)."""
    outcome_rows: int
    job_kinds: dict[str, str] = field(default_factory=dict)
    """job_id -> message kind (``association``, ``entity``)."""


def read_store(path: Path) -> StoreContent:
    """Every association, entity ID, job and item outcome in the file, read in one snapshot."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0, isolation_level=None)
    try:
        conn.execute("BEGIN")
        assoc_rows = conn.execute(
            "SELECT id, entity_id, related_id, submissions, association_types FROM associations"
        ).fetchall()
        entity_rows = [row[0] for row in conn.execute("SELECT id FROM entities")]
        job_rows = conn.execute("SELECT job_id, kind, total FROM jobs").fetchall()
        outcome_rows = conn.execute("SELECT job_id, idx, outcome, code FROM job_items").fetchall()
        conn.execute("COMMIT")
    finally:
        conn.close()
    return StoreContent(
        associations={row[0]: (row[1], row[2], int(row[3]), row[4]) for row in assoc_rows},
        association_rows=len(assoc_rows),
        entities=set(entity_rows),
        entity_rows=len(entity_rows),
        jobs={str(job): int(total) for job, _, total in job_rows},
        outcomes={(row[0], int(row[1])): (row[2], row[3]) for row in outcome_rows},
        outcome_rows=len(outcome_rows),
        job_kinds={str(job): str(kind) for job, kind, _ in job_rows},
    )
