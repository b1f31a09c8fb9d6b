"""Jobs in the embedded SQLite store: registering them, reading their status, purging them.

Synchronous functions on the store's one connection, run on its own thread; the writes run
inside the caller's write transaction (``SqliteStore._write``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from workers.store.logic import ERROR_OUTCOMES, MAX_ITEM_ERRORS, job_status, split_page
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


def list_jobs(
    conn: sqlite3.Connection,
    owner: str | None,
    not_before: float,
    limit: int,
    before: str | None,
) -> tuple[list[JobStatus], str | None]:
    """One page of at most ``limit`` jobs of ``owner`` (anyone's when None) created at or after
    ``not_before``, newest first (by job ID, which is time-ordered), starting after the job
    ``before``; their counts are read in one query. Run it on one snapshot."""
    where: list[str] = ["created_at >= ?"]
    args: list[object] = [not_before]
    if owner is not None:
        where.append("owner = ?")
        args.append(owner)
    if before is not None:
        where.append("job_id < ?")
        args.append(before)
    rows = conn.execute(
        "SELECT job_id, kind, owner, groups, total, created_at FROM jobs"
        f" WHERE {' AND '.join(where)} ORDER BY job_id DESC LIMIT ?",
        (*args, limit + 1),
    ).fetchall()
    page, next_cursor = split_page(rows, limit, lambda row: str(row[0]))
    counted: dict[str, list[tuple[str, int, float]]] = {}
    waiting: dict[str, list[list[str]]] = {}
    if page:
        ids = dumps([row[0] for row in page])
        for job_id, outcome, count, at in conn.execute(
            "SELECT job_id, outcome, count(*), max(at) FROM job_items"
            " WHERE job_id IN (SELECT value FROM json_each(?)) GROUP BY job_id, outcome",
            (ids,),
        ):
            counted.setdefault(job_id, []).append((outcome, count, at))
        for job_id, entities in conn.execute(
            "SELECT w.job_id, w.entities FROM job_waiting AS w"
            " WHERE w.job_id IN (SELECT value FROM json_each(?)) AND NOT EXISTS"
            " (SELECT 1 FROM job_items AS ji WHERE ji.job_id = w.job_id AND ji.idx = w.idx)",
            (ids,),
        ):
            waiting.setdefault(job_id, []).append(orjson.loads(entities))
    jobs = [
        job_status(
            JobHeader(job_id, kind, owner_id, tuple(orjson.loads(groups)), total, created_at),
            counted.get(job_id, []),
            [],
            waiting.get(job_id, []),
        )
        for job_id, kind, owner_id, groups, total, created_at in page
    ]
    return jobs, next_cursor


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
