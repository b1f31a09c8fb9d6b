"""What only the embedded store promises: several connections (processes) on one file."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tests.backends import SqliteStoreFactory
from tests.workers.store import store_factories as f
from workers.ground.errors import ConfigurationError, StoreUnavailable
from workers.store.records import KeyReservation, Outcome
from workers.store.sqlite.schema import configure

URL = f.entity_id("url", "https://evil.example/payload")
HOST = f.entity_id("domain", "evil.example")


async def test_two_stores_on_one_file_upsert_one_association_without_losing_a_count(
    sqlite_store: SqliteStoreFactory,
) -> None:
    stores = [await sqlite_store("shared.sqlite3") for _ in range(2)]
    jobs = [f.new_job() for _ in range(10)]
    results = await asyncio.gather(
        *(
            stores[i % 2].write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
            for i, job in enumerate(jobs)
        )
    )
    record = await stores[1].get_association(f.association_id(URL, HOST))

    outcomes = [o for result in results for o in result.outcomes.values()]
    assert outcomes.count(Outcome.STORED) == 1
    assert record is not None
    assert record.submissions == 10


async def test_committed_batches_survive_reopening_the_file(
    sqlite_store: SqliteStoreFactory,
) -> None:
    job = f.new_job()
    store = await sqlite_store("store.sqlite3")
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
    await store.close()

    reopened = await sqlite_store("store.sqlite3")
    status = await reopened.get_job(job.job_id)

    assert status is not None and status.counts == {"stored": 1}


async def test_a_file_locked_by_another_writer_makes_the_store_unavailable(
    sqlite_store: SqliteStoreFactory,
) -> None:
    store = await sqlite_store(busy_timeout=0.05)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    job = f.new_job()
    try:
        with pytest.raises(StoreUnavailable):
            await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
        blocker.execute("ROLLBACK")

        result = await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
    finally:
        blocker.close()

    assert result.outcomes == {(job.job_id, 0): Outcome.STORED}


async def test_a_closed_store_is_unavailable(sqlite_store: SqliteStoreFactory) -> None:
    store = await sqlite_store()
    await store.close()

    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_a_data_dir_that_cannot_be_created_is_a_configuration_error(
    sqlite_store: SqliteStoreFactory,
) -> None:
    (sqlite_store.directory / "occupied").write_text("a file, not a directory")
    store = await sqlite_store("occupied/store.sqlite3", start=False)

    with pytest.raises(ConfigurationError):
        await store.start()


async def test_associations_whose_ids_end_alike_are_kept_apart(
    sqlite_store: SqliteStoreFactory,
) -> None:
    # The store indexes 64 bits of each ID; the full ID must still tell records apart.
    store = await sqlite_store()
    job = f.new_job(total=2)
    first = f.edge(job, 0, URL, HOST)
    second = f.edge(job, 1, HOST, URL)
    tail = first.association_id[-16:]
    first = replace(first, association_id="0" * 48 + tail)
    second = replace(second, association_id="f" * 48 + tail)
    result = await store.write_batch(f.batch(jobs=[job], edges=[first, second]))
    one = await store.get_association(first.association_id)
    other = await store.get_association(second.association_id)

    assert set(result.outcomes.values()) == {Outcome.STORED}
    assert one is not None and (one.entity_id, one.related_id) == (URL, HOST)
    assert other is not None and (other.entity_id, other.related_id) == (HOST, URL)


async def test_ids_that_are_not_hashes_are_stored_and_read_back(
    sqlite_store: SqliteStoreFactory,
) -> None:
    store = await sqlite_store()
    job = f.new_job()
    write = replace(f.edge(job, 0, "legacy-ab", "legacy-cd"), association_id="not-a-hash")
    await store.write_batch(f.batch(jobs=[job], edges=[write]))
    record = await store.get_association("not-a-hash")
    page, _ = await store.list_associations("legacy-cd")

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


async def test_a_file_of_the_earlier_layout_keeps_its_associations(
    sqlite_store: SqliteStoreFactory,
) -> None:
    legacy = sqlite3.connect(sqlite_store.directory / "store.sqlite3")
    legacy.executescript(LEGACY_ASSOCIATIONS)
    legacy.execute(
        "INSERT INTO associations VALUES (7, ?, ?, ?, 'url', 'domain', '[\"URL Host\"]', 0,"
        " 100.0, 100.0, 1, 'alice')",
        (f.association_id(URL, HOST), URL, HOST),
    )
    legacy.commit()
    legacy.close()
    store = await sqlite_store("store.sqlite3")
    job = f.new_job()
    result = await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
    record = await store.get_association(f.association_id(URL, HOST))
    page, _ = await store.list_associations(HOST)

    assert result.outcomes == {(job.job_id, 0): Outcome.DUPLICATE}
    assert record is not None and record.submissions == 2 and record.created_at == 100.0
    assert [r.id for r in page] == [f.association_id(URL, HOST)]


def test_a_commit_is_flushed_to_disk_before_it_returns(tmp_path: Path) -> None:
    # In WAL, synchronous=NORMAL syncs only at checkpoints: a power loss may take back commits
    # whose messages were acked. FULL (or EXTRA) syncs the WAL on every commit.
    conn = sqlite3.connect(tmp_path / "durable.sqlite3", isolation_level=None)
    try:
        configure(conn, busy_timeout_ms=1000)
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        conn.close()

    assert journal == "wal"
    assert synchronous >= 2  # 2 = FULL, 3 = EXTRA


async def test_reserving_keys_removes_keys_whose_window_has_passed(
    sqlite_store: SqliteStoreFactory,
) -> None:
    store = await sqlite_store()
    for i in range(10):
        await store.reserve_idempotency_key(
            KeyReservation("alice", f"old-{i}", "d", f"job-{i}", 1000.0), 60.0
        )

    await store.reserve_idempotency_key(KeyReservation("alice", "new", "d", "job", 2000.0), 60.0)

    with sqlite3.connect(store.path) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM idempotency_keys")]
    assert keys == ["new"]
