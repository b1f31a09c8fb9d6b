"""Jobs in the embedded SQLite store: registering them, reading their status, purging them.

Synchronous functions on the store's one connection, run on its own thread; the writes run
inside the caller's write transaction (``SqliteStore._write``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from workers.store.logic import ERROR_OUTCOMES, MAX_ITEM_ERRORS, job_status
from workers.store.records import JobHeader, JobStatus
from workers.store.sqlite.schema import dumps


def register_jobs(conn: sqlite3.Connection, jobs: Sequence[JobHeader]) -> None:
    """Insert the headers of ``jobs`` that are not stored yet; a stored header never changes."""
    conn.executemany(
        "INSERT OR IGNORE INTO jobs (job_id, kind, owner, groups, total, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(j.job_id, j.kind, j.owner, dumps(j.groups), j.total, j.created_at) for j in jobs],
    )


def get_job(conn: sqlite3.Connection, job_id: str, not_before: float) -> JobStatus | None:
    """The status of ``job_id`` (see ``logic.job_status``); None when it is unknown or was
    created before ``not_before``. Run it on one snapshot (``SqliteStore._snapshot``)."""
    head = conn.execute(
        "SELECT kind, owner, groups, total, created_at FROM jobs"
        " WHERE job_id = ? AND created_at >= ?",
        (job_id, not_before),
    ).fetchone()
    if head is None:
        return None
    kind, owner, groups, total, created_at = head
    header = JobHeader(job_id, kind, owner, tuple(orjson.loads(groups)), total, created_at)
    counted = conn.execute(
        "SELECT outcome, count(*), max(at) FROM job_items WHERE job_id = ? GROUP BY outcome",
        (job_id,),
    ).fetchall()
    rejected = conn.execute(
        "SELECT idx, code, message FROM job_items WHERE job_id = ? AND outcome IN (?, ?)"
        " ORDER BY idx LIMIT ?",
        (job_id, *ERROR_OUTCOMES, MAX_ITEM_ERRORS),
    )
    # An item that has its outcome no longer waits, whether or not its record was cleared.
    waiting = conn.execute(
        "SELECT w.entities FROM job_waiting AS w WHERE w.job_id = ? AND NOT EXISTS"
        " (SELECT 1 FROM job_items AS ji WHERE ji.job_id = w.job_id AND ji.idx = w.idx)"
        " ORDER BY w.idx",
        (job_id,),
    )
    return job_status(
        header, counted, rejected, (orjson.loads(entities) for (entities,) in waiting)
    )


def purge_jobs(conn: sqlite3.Connection, older_than: float, limit: int) -> int:
    """Remove up to ``limit`` of the jobs created before ``older_than`` (oldest first), with
    their item outcomes and waiting items; how many jobs."""
    expired = [
        (row[0],)
        for row in conn.execute(
            "SELECT job_id FROM jobs WHERE created_at < ? ORDER BY created_at LIMIT ?",
            (older_than, limit),
        )
    ]
    if expired:
        conn.executemany("DELETE FROM job_items WHERE job_id = ?", expired)
        conn.executemany("DELETE FROM job_waiting WHERE job_id = ?", expired)
        conn.executemany("DELETE FROM jobs WHERE job_id = ?", expired)
    return len(expired)
