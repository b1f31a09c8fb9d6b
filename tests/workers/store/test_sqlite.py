"""What only the embedded store promises: several connections (processes) on one file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from assoc_ingest.errors import ConfigurationError, StoreUnavailable
from assoc_ingest.settings import Settings
from tests.workers.store import store_factories as f
from workers.store import SQLITE_FILE_NAME, open_store
from workers.store.mongo import MongoStore
from workers.store.records import Outcome
from workers.store.sqlite import SqliteStore

URL = f.entity_id("url", "https://evil.example/payload")
HOST = f.entity_id("domain", "evil.example")


async def test_two_stores_on_one_file_upsert_one_association_without_losing_a_count(
    tmp_path: Path,
) -> None:
    stores = [SqliteStore(tmp_path / "shared.sqlite3") for _ in range(2)]
    for store in stores:
        await store.start()
    jobs = [f.new_job() for _ in range(10)]
    try:
        results = await asyncio.gather(
            *(
                stores[i % 2].write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
                for i, job in enumerate(jobs)
            )
        )
        record = await stores[1].get_association(f.association_id(URL, HOST))
    finally:
        for store in stores:
            await store.close()

    outcomes = [o for result in results for o in result.outcomes.values()]
    assert outcomes.count(Outcome.STORED) == 1
    assert record is not None
    assert record.submissions == 10


async def test_committed_batches_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    job = f.new_job()
    store = SqliteStore(path)
    await store.start()
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
    await store.close()

    reopened = SqliteStore(path)
    await reopened.start()
    try:
        status = await reopened.get_job(job.job_id)
    finally:
        await reopened.close()

    assert status is not None and status.counts == {"stored": 1}


async def test_a_file_locked_by_another_writer_makes_the_store_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path, busy_timeout=0.05)
    await store.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    job = f.new_job()
    try:
        with pytest.raises(StoreUnavailable):
            await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
        blocker.execute("ROLLBACK")

        result = await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
    finally:
        blocker.close()
        await store.close()

    assert result.outcomes == {(job.job_id, 0): Outcome.STORED}


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.start()
    await store.close()

    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_a_data_dir_that_cannot_be_created_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "occupied").write_text("a file, not a directory")
    store = SqliteStore(tmp_path / "occupied" / "store.sqlite3")

    with pytest.raises(ConfigurationError):
        await store.start()
    await store.close()


def test_open_store_uses_the_sqlite_file_under_data_dir_without_mongodb(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path, mongodb_url=None))

    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / SQLITE_FILE_NAME


async def test_open_store_uses_mongodb_when_its_url_is_set(tmp_path: Path) -> None:
    store = open_store(
        Settings(data_dir=tmp_path, mongodb_url="mongodb://127.0.0.1:1/", mongodb_database="x")
    )

    assert isinstance(store, MongoStore)
    assert store.database_name == "x"
    await store.close()
