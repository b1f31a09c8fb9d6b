"""``workers.worker.Worker`` on the in-process queue, on the embedded store and on MongoDB (fast).

Tests that need a store failing on purpose subclass the embedded store and run on it alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from schemas import EntityItem
from schemas.jobids import new_job_id
from schemas.messages import decode_message, encode_item
from tests.backends import MemoryQueueFactory, SqliteStoreFactory, StoreFactory
from tests.workers.factories import (
    ADDRESS,
    ADDRESS_2,
    ASN,
    association,
    associations,
    deletes,
    eid,
    entities,
    entity,
    poison_entity,
)
from tests.workers.helpers import edges_of, eventually, fast_settings, wait_for_job
from workers.ground.errors import StoreUnavailable
from workers.ground.settings import Settings
from workers.queue.memory import MemoryJobQueue
from workers.store.base import Store
from workers.store.records import (
    BatchResult,
    CustomTypeRecord,
    Direction,
    JobHeader,
    WriteBatch,
)
from workers.store.sqlite import SqliteStore
from workers.worker import Worker


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    return await store_factory()


@pytest.fixture
async def queue(memory_queue: MemoryQueueFactory) -> MemoryJobQueue:
    return await memory_queue()


@pytest.fixture
async def worker(queue: MemoryJobQueue, store: Store, settings: Settings) -> AsyncIterator[Worker]:
    worker = Worker(queue, store, settings)
    await worker.start()
    yield worker
    await worker.stop(5)


async def publish(queue: MemoryJobQueue, body: bytes) -> None:
    await queue.publish(body, message_id=new_job_id())


class FlakyStore(SqliteStore):
    """The embedded store, unavailable for its first ``failures`` batch writes."""

    failures = 0
    attempts = 0

    async def write_batch(self, batch: WriteBatch) -> BatchResult:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StoreUnavailable("the store is down (test)")
        return await super().write_batch(batch)


class SlowReadStore(SqliteStore):
    """The embedded store whose entity reads take ``delay`` seconds."""

    delay = 0.0

    async def existing_entity_ids(self, ids: Collection[str]) -> set[str]:
        await asyncio.sleep(self.delay)
        return await super().existing_entity_ids(ids)


@pytest.mark.usefixtures("worker")
async def test_an_association_between_stored_entities_is_stored_and_readable_from_both_ends(
    queue: MemoryJobQueue, store: Store
) -> None:
    seed = entity(ASN, [ADDRESS], [(ASN, ADDRESS, "ASN to Address")])
    await publish(queue, entities(seed))
    assert (await wait_for_job(store, seed.job)).counts == {"stored": 1}

    item = association(ASN, ADDRESS)
    await publish(queue, associations(item))
    status = await wait_for_job(store, item.job)

    assert status.counts == {"duplicate": 1}
    [out] = await edges_of(store, eid(ASN), Direction.OUT)
    [into] = await edges_of(store, eid(ADDRESS), Direction.IN)
    assert out.id == into.id
    assert (out.association_types, out.submissions) == (("ASN to Address",), 2)


@pytest.mark.usefixtures("worker")
async def test_an_association_sent_before_its_entity_is_stored_once_the_entity_arrives(
    queue: MemoryJobQueue, store: Store
) -> None:
    item = association(ASN, ADDRESS)
    await publish(queue, associations(item))
    await asyncio.sleep(0.3)
    await publish(queue, entities(entity(ASN), entity(ADDRESS, index=0)))

    status = await wait_for_job(store, item.job)

    assert status.counts == {"stored": 1}


@pytest.mark.usefixtures("worker")
async def test_an_association_whose_entity_never_arrives_is_rejected_after_the_wait(
    queue: MemoryJobQueue, store: Store, settings: Settings
) -> None:
    await publish(queue, entities(entity(ASN)))
    item = association(ASN, ADDRESS)
    started = time.monotonic()
    await publish(queue, associations(item))

    status = await wait_for_job(store, item.job)

    assert time.monotonic() - started >= settings.entity_wait * 0.9
    assert status.counts == {"rejected": 1}
    [error] = status.errors
    assert error.code == "entity_not_found"
    assert eid(ADDRESS) in error.message


@pytest.mark.usefixtures("worker")
async def test_waiting_items_do_not_hold_back_the_others_of_their_message(
    queue: MemoryJobQueue, store: Store
) -> None:
    await _seed(queue, store, entity(ASN), entity(ADDRESS))
    job = new_job_id()
    ready = association(ASN, ADDRESS, job=job, index=0, total=2)
    waiting = association(ASN, ("ip", "198.51.100.9"), job=job, index=1, total=2)
    await publish(queue, associations(ready, waiting))

    await asyncio.sleep(0.5)
    status = await store.get_job(job)

    assert status is not None and status.counts == {"stored": 1}
    assert status.status == "processing"


@pytest.mark.parametrize("entities_first", [True, False], ids=["entities_first", "links_first"])
async def test_a_backlog_older_than_the_entity_wait_is_stored_in_either_order(
    queue: MemoryJobQueue, store: SqliteStore, settings: Settings, entities_first: bool
) -> None:
    # Submitted long ago while no worker ran: the wait counts from a worker's first look.
    long_ago = time.time() - 10 * settings.entity_wait
    jobs = [new_job_id() for _ in range(3)]
    links = [
        association(ASN, ("ip", f"203.0.113.{n + 1}"), job=job, submitted_at=long_ago)
        for n, job in enumerate(jobs)
    ]
    seeds = entities(
        entity(ASN, submitted_at=long_ago),
        *(entity(("ip", f"203.0.113.{n + 1}"), submitted_at=long_ago) for n in range(3)),
    )
    bodies = [seeds, associations(*links)]
    for body in bodies if entities_first else reversed(bodies):
        await publish(queue, body)

    worker = Worker(queue, store, settings)
    await worker.start()
    try:
        statuses = [await wait_for_job(store, job) for job in jobs]
    finally:
        await worker.stop(5)

    assert [status.counts for status in statuses] == [{"stored": 1}] * 3


@pytest.mark.usefixtures("worker")
async def test_a_waiting_item_shows_in_its_job_with_the_entity_it_waits_for(
    queue: MemoryJobQueue, store: SqliteStore
) -> None:
    seed = entity(ASN)
    await publish(queue, entities(seed))
    await wait_for_job(store, seed.job)
    item = association(ASN, ADDRESS)
    await publish(queue, associations(item))

    async def waiting() -> bool:
        status = await store.get_job(item.job)
        return status is not None and status.waiting == 1

    await eventually(waiting)
    status = await store.get_job(item.job)
    assert status is not None
    assert (status.status, status.waiting_for, status.counts) == ("processing", (eid(ADDRESS),), {})

    await publish(queue, entities(entity(ADDRESS)))
    done = await wait_for_job(store, item.job)
    assert (done.counts, done.waiting, done.waiting_for) == ({"stored": 1}, 0, ())


@pytest.mark.usefixtures("worker")
async def test_a_failing_item_fails_alone_and_only_it_goes_to_the_dead_letter_queue(
    queue: MemoryJobQueue, store: SqliteStore
) -> None:
    good = [entity(("ip", f"198.51.100.{n}")) for n in range(1, 6)]
    poison = poison_entity(("domain", "poison.example"))
    await publish(queue, entities(*good[:2], poison, *good[2:]))

    # On SecantusDB the first transaction after the poisoned ones were aborted waits ~9 s on
    # this machine (the SQLite store answers in under a second): loaded, that passed 15 s.
    statuses = [await wait_for_job(store, item.job, within=60.0) for item in good]
    failed = await wait_for_job(store, poison.job)

    assert [status.status for status in statuses] == ["done"] * 5
    assert [status.counts for status in statuses] == [{"stored": 1}] * 5
    assert (failed.status, failed.counts) == ("failed", {"failed": 1})
    [error] = failed.errors
    assert error.code == "handler_error" and (
        "64-bit" in error.message or "8-byte" in error.message
    )
    await eventually(lambda: _dead_count(queue, 1))
    [dead] = await queue.dead_letters(10)
    assert dead.reason.startswith("handler_error")
    [item] = decode_message(dead.body).items
    assert item.job == poison.job
    assert await queue.depth() == 0


@pytest.mark.usefixtures("worker")
async def test_an_undecodable_item_fails_alone_and_the_rest_of_its_message_is_handled(
    queue: MemoryJobQueue, store: SqliteStore
) -> None:
    good = [entity(("ip", f"198.51.100.{n}")) for n in range(1, 4)]
    broken = orjson.loads(encode_item(entity(("domain", "broken.example"))))
    broken_job = broken["job"]
    del broken["entity"]  # its job and index are readable, the item is not
    items = [orjson.loads(encode_item(item)) for item in good]
    items.insert(1, broken)
    await publish(queue, orjson.dumps({"v": 1, "kind": "entity", "items": items}))

    statuses = [await wait_for_job(store, item.job) for item in good]
    failed = await wait_for_job(store, broken_job)

    assert [status.counts for status in statuses] == [{"stored": 1}] * 3
    assert (failed.status, failed.counts) == ("failed", {"failed": 1})
    assert failed.errors[0].code == "undecodable"
    await eventually(lambda: _dead_count(queue, 1))
    [dead] = await queue.dead_letters(10)
    assert dead.reason.startswith("undecodable")
    assert [item["job"] for item in orjson.loads(dead.body)["items"]] == [broken_job]


async def _dead_count(queue: MemoryJobQueue, count: int) -> bool:
    return len(await queue.dead_letters(100)) == count


@pytest.mark.usefixtures("worker")
async def test_an_entity_message_carrying_associations_stores_them_with_its_entities(
    queue: MemoryJobQueue, store: Store
) -> None:
    # A STIX bundle's job: entities and the associations between them in one message; the
    # one whose other end is written by no item of it waits for that entity like any other.
    job = new_job_id()
    items = (
        entity(ASN, job=job, index=0, total=4),
        entity(ADDRESS, job=job, index=1, total=4),
        association(ASN, ADDRESS, job=job, index=2, total=4),
        association(ASN, ADDRESS_2, job=job, index=3, total=4),
    )
    await publish(queue, entities(*items))
    await eventually(lambda: _counts(store, job, {"stored": 3}))
    await publish(queue, entities(entity(ADDRESS_2)))

    status = await wait_for_job(store, job)

    assert (status.total, status.counts) == (4, {"stored": 4})
    out = await edges_of(store, eid(ASN), Direction.OUT)
    assert sorted((e.related_id, e.association_types, e.submissions) for e in out) == sorted(
        (eid(end), ("ASN to Address",), 1) for end in (ADDRESS, ADDRESS_2)
    )


async def _counts(store: Store, job: str, counts: dict[str, int]) -> bool:
    status = await store.get_job(job)
    return status is not None and status.counts == counts


async def _seed(queue: MemoryJobQueue, store: Store, *items: EntityItem) -> None:
    # Published and stored: a worker handles several messages at once, so a later message's
    # job being done says nothing of an earlier one's.
    await publish(queue, entities(*items))
    for item in items:
        await wait_for_job(store, item.job)


async def _stored_job(queue: MemoryJobQueue, store: Store) -> str:
    # A marker job: once it is done, every message published before it on this queue was seen.
    marker = entity(("domain", "marker.example.com"))
    await publish(queue, entities(marker))
    return marker.job


@pytest.mark.usefixtures("worker")
async def test_an_undecodable_message_goes_to_the_dead_letter_queue_with_its_reason(
    queue: MemoryJobQueue,
) -> None:
    await publish(queue, b'{"v": 99, "kind": "association", "items": []}')
    await publish(queue, b"not json at all")

    async def both_dead() -> bool:
        return len(await queue.dead_letters(10)) >= 2

    await eventually(both_dead)

    reasons = [dead.reason for dead in await queue.dead_letters(10)]
    assert len(reasons) == 2
    assert all(reason.startswith("undecodable") for reason in reasons)
    assert await queue.depth() == 0


@pytest.mark.usefixtures("worker")
async def test_a_redelivered_message_changes_nothing_the_second_time(
    queue: MemoryJobQueue, store: Store
) -> None:
    await publish(queue, entities(entity(ASN), entity(ADDRESS)))
    item = association(ASN, ADDRESS)
    body = associations(item)
    await publish(queue, body)
    await wait_for_job(store, item.job)
    await publish(queue, body)
    await wait_for_job(store, (await _stored_job(queue, store)))

    status = await store.get_job(item.job)
    [record] = await edges_of(store, eid(ASN), Direction.OUT)

    assert status is not None and status.counts == {"stored": 1}
    assert record.submissions == 1


@pytest.mark.usefixtures("worker")
async def test_a_delete_removes_the_association_and_a_second_one_finds_nothing(
    queue: MemoryJobQueue, store: Store
) -> None:
    await _seed(queue, store, entity(ASN, [ADDRESS], [(ASN, ADDRESS, "ASN to Address")]))
    first, second = association(ASN, ADDRESS), association(ASN, ADDRESS, "ASN to Address")
    await publish(queue, deletes(first))
    await wait_for_job(store, first.job)
    await publish(queue, deletes(second))

    assert (await wait_for_job(store, first.job)).counts == {"deleted": 1}
    assert (await wait_for_job(store, second.job)).counts == {"not_found": 1}
    assert await edges_of(store, eid(ASN), Direction.BOTH) == []


async def test_a_store_outage_is_retried_until_the_write_succeeds(
    queue: MemoryJobQueue, settings: Settings, sqlite_store: SqliteStoreFactory
) -> None:
    store = await sqlite_store("flaky.sqlite3", kind=FlakyStore)
    store.failures = 3
    worker = Worker(queue, store, settings)
    await worker.start()
    try:
        seed = entity(ASN)
        await publish(queue, entities(seed))
        status = await wait_for_job(store, seed.job)
    finally:
        await worker.stop(5)
        await store.close()

    assert status.counts == {"stored": 1}
    assert store.attempts == 4
    assert await queue.dead_letters(10) == []


async def test_a_message_that_cannot_be_written_is_handed_back_on_stop(
    queue: MemoryJobQueue, settings: Settings, sqlite_store: SqliteStoreFactory
) -> None:
    store = await sqlite_store("down.sqlite3", kind=FlakyStore)
    store.failures = 1_000_000
    worker = Worker(queue, store, settings)
    await worker.start()
    await publish(queue, entities(entity(ASN)))
    await eventually(lambda: store.attempts >= 2)

    await worker.stop(1)
    await store.close()

    assert store.attempts >= 2
    assert await queue.depth() == 1
    assert await queue.dead_letters(10) == []


async def test_on_stop_a_message_in_flight_is_finished_before_returning(
    queue: MemoryJobQueue, settings: Settings, sqlite_store: SqliteStoreFactory
) -> None:
    store = await sqlite_store("slow.sqlite3", kind=SlowReadStore)
    store.delay = 0.5
    worker = Worker(queue, store, settings)
    await worker.start()
    await publish(queue, entities(entity(ASN), entity(ADDRESS)))
    item = association(ASN, ADDRESS)
    await publish(queue, associations(item))
    await asyncio.sleep(0.2)  # the association message is now waiting on its read

    await worker.stop(5)
    status = await store.get_job(item.job)
    await store.close()

    assert status is not None and status.counts == {"stored": 1}
    assert await queue.depth() == 0


async def test_a_custom_type_added_after_start_is_used_without_waiting_for_the_refresh(
    queue: MemoryJobQueue, store: Store, settings: Settings
) -> None:
    worker = Worker(queue, store, settings)  # refreshes only every 60 s
    await worker.start()
    try:
        await store.put_custom_type(
            CustomTypeRecord("Seen Together", "ASN", ("Address",), False, time.time())
        )
        await publish(queue, entities(entity(ASN), entity(ADDRESS)))
        item = association(ASN, ADDRESS, "seen together")
        await publish(queue, associations(item))
        status = await wait_for_job(store, item.job)
    finally:
        await worker.stop(5)

    assert status.counts == {"stored": 1}
    [record] = await edges_of(store, eid(ASN), Direction.OUT)
    assert record.association_types == ("Seen Together",)


@pytest.mark.usefixtures("worker")
async def test_each_message_is_summarised_in_the_log(queue: MemoryJobQueue, store: Store) -> None:
    await _seed(queue, store, entity(ASN), entity(ADDRESS))
    job = new_job_id()
    good = association(ASN, ADDRESS, job=job, index=0, total=2)
    bad = association(ADDRESS, ASN, job=job, index=1, total=2)

    with capture_logs() as logs:
        await publish(queue, associations(good, bad))
        await wait_for_job(store, job)

    # the summary of the message before may be logged after its outcomes were readable
    mine = [e for e in logs if e.get("job_id") == job]
    stored = [e for e in mine if e["event"] == "job.stored"]
    rejected = [e for e in mine if e["event"] == "job.rejected"]
    assert [(e["job_id"], e["stored"]) for e in stored] == [(job, 1)]
    assert [(e["job_id"], e["association_not_allowed"]) for e in rejected] == [(job, 1)]


@pytest.mark.usefixtures("worker")
async def test_each_item_is_counted_once_by_outcome_and_reason(
    queue: MemoryJobQueue, store: Store
) -> None:
    await publish(queue, entities(entity(ASN), entity(ADDRESS)))
    await wait_for_job(store, (await _stored_job(queue, store)))
    job = new_job_id()
    good = association(ASN, ADDRESS, job=job, index=0, total=3)
    again = association(ASN, ADDRESS, job=job, index=1, total=3)
    bad = association(ADDRESS, ASN, job=job, index=2, total=3)

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def counts() -> tuple[float, ...]:
        return (
            sample("ingest_worker_items_total", kind="association", outcome="stored", reason=""),
            sample("ingest_worker_items_total", kind="association", outcome="duplicate", reason=""),
            sample(
                "ingest_worker_items_total",
                kind="association",
                outcome="rejected",
                reason="association_not_allowed",
            ),
            sample("ingest_end_to_end_seconds_count"),
        )

    before = counts()
    await publish(queue, associations(good, again, bad))
    await wait_for_job(store, job)
    # the outcomes are readable just before the worker counts them
    await eventually(lambda: counts()[3] - before[3] >= 3)

    assert [after - was for after, was in zip(counts(), before, strict=True)] == [1, 1, 1, 3]


async def test_a_started_worker_removes_jobs_older_than_the_job_ttl(
    queue: MemoryJobQueue, store: Store, tmp_path: Path
) -> None:
    settings = fast_settings(tmp_path, job_ttl=60.0, idempotency_window=60.0)
    now = time.time()
    old, recent = new_job_id(), new_job_id()
    await store.register_jobs(
        [
            JobHeader(old, "association", "alice", (), 1, now - 3600),
            JobHeader(recent, "association", "alice", (), 1, now),
        ]
    )
    worker = Worker(queue, store, settings)

    with capture_logs() as logs:
        await worker.start()
        try:
            await eventually(lambda: any(e["event"] == "jobs.purged" for e in logs))
        finally:
            await worker.stop(5)

    assert [e["jobs"] for e in logs if e["event"] == "jobs.purged"] == [1]
    assert await store.purge_expired_jobs(time.time() - 60.0) == 0  # nothing was left
    assert await store.get_job(recent) is not None
