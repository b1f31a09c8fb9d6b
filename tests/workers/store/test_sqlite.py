"""What only the embedded store promises: several connections (processes) on one file."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tests.workers.store import store_factories as f
from workers.backends import SQLITE_FILE_NAME, open_store
from workers.ground.errors import ConfigurationError, StoreUnavailable
from workers.ground.settings import Settings
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


async def test_associations_whose_ids_end_alike_are_kept_apart(tmp_path: Path) -> None:
    # The store indexes 64 bits of each ID; the full ID must still tell records apart.
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.start()
    job = f.new_job(total=2)
    first = f.edge(job, 0, URL, HOST)
    second = f.edge(job, 1, HOST, URL)
    tail = first.association_id[-16:]
    first = replace(first, association_id="0" * 48 + tail)
    second = replace(second, association_id="f" * 48 + tail)
    try:
        result = await store.write_batch(f.batch(jobs=[job], edges=[first, second]))
        one = await store.get_association(first.association_id)
        other = await store.get_association(second.association_id)
    finally:
        await store.close()

    assert set(result.outcomes.values()) == {Outcome.STORED}
    assert one is not None and (one.entity_id, one.related_id) == (URL, HOST)
    assert other is not None and (other.entity_id, other.related_id) == (HOST, URL)


async def test_ids_that_are_not_hashes_are_stored_and_read_back(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.start()
    job = f.new_job()
    write = replace(f.edge(job, 0, "legacy-ab", "legacy-cd"), association_id="not-a-hash")
    try:
        await store.write_batch(f.batch(jobs=[job], edges=[write]))
        record = await store.get_association("not-a-hash")
        page, _ = await store.list_associations("legacy-cd")
    finally:
        await store.close()

    assert record is not None and record.entity_id == "legacy-ab"
    assert [r.id for r in page] == ["not-a-hash"]


LEGACY_ASSOCIATIONS = """
CREATE TABLE associations (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, entity_id TEXT NOT NULL,
    related_id TEXT NOT NULL, entity_type TEXT NOT NULL, related_type TEXT NOT NULL,
    association_types TEXT NOT NULL, file_action INTEGER NOT NULL, created_at REAL NOT NULL,
    last_seen REAL NOT NULL, submissions INTEGER NOT NULL, created_by TEXT NOT NULL);
CREATE INDEX associations_entity ON associations (entity_id);
CREATE INDEX associations_related ON associations (related_id);
"""


async def test_a_file_of_the_earlier_layout_keeps_its_associations(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    legacy = sqlite3.connect(path)
    legacy.executescript(LEGACY_ASSOCIATIONS)
    legacy.execute(
        "INSERT INTO associations VALUES (7, ?, ?, ?, 'url', 'domain', '[\"URL Host\"]', 0,"
        " 100.0, 100.0, 1, 'alice')",
        (f.association_id(URL, HOST), URL, HOST),
    )
    legacy.commit()
    legacy.close()
    store = SqliteStore(path)
    await store.start()
    job = f.new_job()
    try:
        result = await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
        record = await store.get_association(f.association_id(URL, HOST))
        page, _ = await store.list_associations(HOST)
    finally:
        await store.close()

    assert result.outcomes == {(job.job_id, 0): Outcome.DUPLICATE}
    assert record is not None and record.submissions == 2 and record.created_at == 100.0
    assert [r.id for r in page] == [f.association_id(URL, HOST)]
