"""``workers.worker.Worker`` on the real RabbitMQ, on the embedded store and on MongoDB:
messages in, outcomes out (SPEC §2, §4).

Messages are built with ``encode_item``/``encode_envelope`` as the front builds them and
published straight to a topology of the test's own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas import association_id
from schemas.jobids import new_job_id
from tests.backends import RabbitQueueFactory, StoreFactory
from tests.workers.factories import (
    ADDRESS,
    ASN,
    FILE,
    HOST,
    association,
    associations,
    eid,
    entities,
    entity,
)
from tests.workers.helpers import edges_of, eventually, fast_settings, wait_for_job
from workers.ground.settings import Settings
from workers.queue.rabbit import RabbitJobQueue
from workers.store.base import Store
from workers.store.records import Direction, JobStatus
from workers.worker import Worker

pytestmark = pytest.mark.rabbitmq

ENTITY_WAIT = 2.5


@dataclass
class Pipeline:
    queue: RabbitJobQueue
    store: Store
    settings: Settings

    async def send(self, body: bytes) -> None:
        await self.queue.publish(body, message_id=new_job_id())

    async def seed(self, *entities_: tuple[str, str]) -> None:
        """Store these entities (through the worker) before the test goes on."""
        job, total = new_job_id(), len(entities_)
        await self.send(
            entities(*(entity(e, job=job, index=i, total=total) for i, e in enumerate(entities_)))
        )
        await wait_for_job(self.store, job)

    async def outcome_of(self, body: bytes, job: str) -> JobStatus:
        await self.send(body)
        return await wait_for_job(self.store, job)


@pytest.fixture
async def pipeline(
    rabbit_queue: RabbitQueueFactory, store_factory: StoreFactory, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    settings = fast_settings(tmp_path, entity_wait=ENTITY_WAIT)
    store = await store_factory()
    queue = await rabbit_queue()
    worker = Worker(queue, store, settings)
    await worker.start()
    try:
        yield Pipeline(queue, store, settings)
    finally:
        await worker.stop(5)


async def test_an_entity_then_its_association_is_stored_and_readable_from_both_ends(
    pipeline: Pipeline,
) -> None:
    await pipeline.seed(ASN, ADDRESS)
    item = association(ASN, ADDRESS)

    status = await pipeline.outcome_of(associations(item), item.job)

    assert (status.status, status.counts) == ("done", {"stored": 1})
    [out] = await edges_of(pipeline.store, eid(ASN), Direction.OUT)
    [into] = await edges_of(pipeline.store, eid(ADDRESS), Direction.IN)
    assert out == into
    assert out.id == association_id(eid(ASN), eid(ADDRESS))
    assert (out.entity_type, out.related_type) == ("asn", "ip")
    assert out.association_types == ("ASN to Address",)
    assert out.created_by == "alice"


async def test_the_reverse_direction_is_rejected_as_not_allowed(pipeline: Pipeline) -> None:
    await pipeline.seed(ASN, ADDRESS)
    item = association(ADDRESS, ASN)

    status = await pipeline.outcome_of(associations(item), item.job)

    assert (status.status, status.counts) == ("failed", {"rejected": 1})
    [error] = status.errors
    assert (error.index, error.code) == (0, "association_not_allowed")
    assert "0x1001" in error.message
    assert await edges_of(pipeline.store, eid(ASN), Direction.BOTH) == []


async def test_file_to_host_needs_a_type_and_is_stored_as_a_file_action_with_one(
    pipeline: Pipeline,
) -> None:
    await pipeline.seed(FILE, HOST)
    job = new_job_id()
    untyped = association(FILE, HOST, job=job, index=0, total=2)
    typed = association(FILE, HOST, "File Traffic", job=job, index=1, total=2)

    status = await pipeline.outcome_of(associations(untyped, typed), job)

    assert status.counts == {"rejected": 1, "stored": 1}
    [error] = status.errors
    assert (error.index, error.code) == (0, "ambiguous_association_type")
    assert "File DNS Query" in error.message and "File Traffic" in error.message
    [record] = await edges_of(pipeline.store, eid(HOST), Direction.IN)
    assert (record.association_types, record.file_action) == (("File Traffic",), True)


async def test_an_association_sent_two_seconds_before_its_entity_is_stored(
    pipeline: Pipeline,
) -> None:
    await pipeline.seed(ASN)
    item = association(ASN, ADDRESS)
    await pipeline.send(associations(item))
    await asyncio.sleep(2.0)  # within the entity wait of 2.5 s
    await pipeline.seed(ADDRESS)

    status = await wait_for_job(pipeline.store, item.job)

    assert status.counts == {"stored": 1}


async def test_an_association_whose_entity_is_never_sent_is_rejected_entity_not_found(
    pipeline: Pipeline,
) -> None:
    await pipeline.seed(ASN)
    item = association(ASN, ADDRESS)

    status = await pipeline.outcome_of(associations(item), item.job)

    assert status.counts == {"rejected": 1}
    assert status.updated_at is not None
    assert status.updated_at - item.submitted_at >= ENTITY_WAIT
    [error] = status.errors
    assert error.code == "entity_not_found"
    assert eid(ADDRESS) in error.message


async def test_the_same_association_from_three_jobs_is_one_record_with_three_submissions(
    pipeline: Pipeline,
) -> None:
    await pipeline.seed(ASN, ADDRESS)
    items = [association(ASN, ADDRESS) for _ in range(3)]

    await pipeline.send(associations(items[0]))
    await pipeline.send(associations(items[1], items[2]))
    statuses = [await wait_for_job(pipeline.store, item.job) for item in items]

    assert sorted(next(iter(s.counts)) for s in statuses) == ["duplicate", "duplicate", "stored"]
    [record] = await edges_of(pipeline.store, eid(ASN), Direction.BOTH)
    assert record.submissions == 3


async def test_an_undecodable_message_lands_in_the_dead_letter_queue_with_its_reason(
    pipeline: Pipeline,
) -> None:
    await pipeline.send(b"\x00 definitely not an envelope")

    async def dead() -> bool:
        return bool(await pipeline.queue.dead_letters(10))

    await eventually(dead)
    [letter] = await pipeline.queue.dead_letters(10)
    assert letter.reason.startswith("undecodable")
    assert letter.body == b"\x00 definitely not an envelope"
    assert await pipeline.queue.depth() == 0
