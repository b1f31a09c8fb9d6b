"""Expired jobs leave the embedded store on a schedule, without holding up batch writes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from tests.backends import MemoryQueueFactory, SqliteStoreFactory
from tests.workers.helpers import eventually, fast_settings
from tests.workers.store import store_factories as f
from workers.store.sqlite import SqliteStore
from workers.worker import Worker

URL = f.entity_id("url", "https://evil.example/payload")
HOST = f.entity_id("domain", "evil.example")


def _rows(store: SqliteStore, table: str) -> int:
    conn = sqlite3.connect(store.path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def _jobs(store: SqliteStore, count: int, created_at: float) -> list[str]:
    jobs = [f.new_job(created_at=created_at) for _ in range(count)]
    await store.write_batch(
        f.batch(jobs=jobs, edges=[f.edge(job, 0, URL, HOST) for job in jobs], now=created_at)
    )
    return [job.job_id for job in jobs]


async def test_a_running_worker_removes_expired_jobs_and_their_items_from_the_file(
    sqlite_store: SqliteStoreFactory, memory_queue: MemoryQueueFactory, tmp_path: Path
) -> None:
    store = await sqlite_store()
    now = time.time()
    await _jobs(store, 3, now - 7200)
    [recent] = await _jobs(store, 1, now)
    settings = fast_settings(
        tmp_path, job_ttl=3600.0, idempotency_window=3600.0, job_purge_seconds=0.1
    )
    worker = Worker(await memory_queue(), store, settings)
    await worker.start()
    try:
        await eventually(lambda: _rows(store, "jobs") == 1)
    finally:
        await worker.stop(5)

    assert _rows(store, "job_items") == 1
    assert await store.get_job(recent) is not None


async def test_batch_writes_go_on_while_a_large_purge_runs(
    sqlite_store: SqliteStoreFactory,
) -> None:
    store = await sqlite_store()
    for _ in range(6):
        await _jobs(store, 1000, time.time() - 7200)

    purge = asyncio.create_task(store.purge_expired_jobs(time.time() - 3600))
    await asyncio.sleep(0.01)  # the purge has begun
    job = f.new_job()
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))

    assert not purge.done()  # the write did not wait for the whole purge
    assert await purge == 6000
    assert _rows(store, "jobs") == 1
