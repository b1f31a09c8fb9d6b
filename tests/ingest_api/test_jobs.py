"""The background job registry: batched, off the request path, never fatal."""

from __future__ import annotations

import time

from structlog.testing import capture_logs

from ingest_api.jobs import JobRegistry
from schemas import new_job_id
from tests.backends import SqliteStoreFactory
from workers.store.records import JobHeader
from workers.store.sqlite import SqliteStore


def header(job_id: str) -> JobHeader:
    return JobHeader(job_id, "association", "alice", ("soc",), 3, time.time())


async def test_every_added_job_is_registered_by_the_time_the_registry_closes(
    store: SqliteStore,
) -> None:
    registry = JobRegistry(store, max_batch=2)
    await registry.start()
    job_ids = [new_job_id() for _ in range(5)]
    for job_id in job_ids:
        registry.add(header(job_id))
    await registry.close()
    for job_id in job_ids:
        job = await store.get_job(job_id)
        assert job is not None
        assert (job.status, job.total, job.owner) == ("queued", 3, "alice")


async def test_a_store_that_cannot_register_is_logged_and_not_fatal(
    sqlite_store: SqliteStoreFactory,
) -> None:
    unstarted = await sqlite_store("never-started.sqlite3", start=False)
    registry = JobRegistry(unstarted, attempts=1, close_timeout=5)
    await registry.start()
    with capture_logs() as logs:
        registry.add(header(new_job_id()))
        await registry.close()
    events = {entry["event"] for entry in logs}
    assert events & {"jobs.registration_failed", "jobs.registration_crashed"}


async def test_beyond_the_pending_limit_the_oldest_jobs_are_dropped_with_a_warning(
    store: SqliteStore,
) -> None:
    registry = JobRegistry(store, max_pending=2)  # not started: nothing is written yet
    with capture_logs() as logs:
        for _ in range(3):
            registry.add(header(new_job_id()))
    assert [e["count"] for e in logs if e["event"] == "jobs.registration_dropped"] == [1]
