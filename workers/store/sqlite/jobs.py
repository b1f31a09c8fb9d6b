"""Jobs in the embedded SQLite store: registering them, reading their status, purging them.

Synchronous functions on the store's one connection, run on its own thread; the writes run
inside the caller's write transaction (``SqliteStore._write``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from workers.store.logic import MAX_ITEM_ERRORS, job_status, split_page
from workers.store.records import JobHeader, JobStatus, Outcome
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
        "SELECT idx, code, message FROM job_items WHERE job_id = ? AND outcome = ?"
        " ORDER BY idx LIMIT ?",
        (job_id, Outcome.REJECTED.value, MAX_ITEM_ERRORS),
    )
    return job_status(header, counted, rejected)


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
    if page:
        ids = dumps([row[0] for row in page])
        for job_id, outcome, count, at in conn.execute(
            "SELECT job_id, outcome, count(*), max(at) FROM job_items"
            " WHERE job_id IN (SELECT value FROM json_each(?)) GROUP BY job_id, outcome",
            (ids,),
        ):
            counted.setdefault(job_id, []).append((outcome, count, at))
    jobs = [
        job_status(
            JobHeader(job_id, kind, owner_id, tuple(orjson.loads(groups)), total, created_at),
            counted.get(job_id, []),
            [],
        )
        for job_id, kind, owner_id, groups, total, created_at in page
    ]
    return jobs, next_cursor


def purge_jobs(conn: sqlite3.Connection, older_than: float) -> int:
    """Remove the jobs created before ``older_than`` and their item outcomes; how many jobs."""
    expired = [
        row[0]
        for row in conn.execute("SELECT job_id FROM jobs WHERE created_at < ?", (older_than,))
    ]
    if expired:
        conn.executemany("DELETE FROM job_items WHERE job_id = ?", [(j,) for j in expired])
        conn.executemany("DELETE FROM jobs WHERE job_id = ?", [(j,) for j in expired])
    return len(expired)
