"""The coalescing publisher: packing, bounds, release by confirm, failures and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from ingest_api.publisher import CoalescingPublisher, TooLargeForOneMessage
from schemas.messages import AssociationItem, MessageKind, decode_message, encode_item
from tests.backends import JobQueueFactory, MemoryQueueFactory
from tests.workers.queue.support import Inbox
from workers.ground.errors import BrokerUnavailable, QueueFull
from workers.queue.base import Topology
from workers.queue.memory import MemoryJobQueue

KIND = MessageKind.ASSOCIATION


def item(job: str, index: int = 0, total: int = 1) -> bytes:
    return encode_item(
        AssociationItem(
            job=job,
            index=index,
            total=total,
            user="alice",
            submitted_at=0.0,
            entity_id=f"asn-{job}",
            related_id=f"ip-{index}",
        )
    )


def jobs_of(body: bytes) -> list[tuple[str, int]]:
    return [(i.job, i.index) for i in decode_message(body).items]


class GatedQueue(MemoryJobQueue):
    """A memory queue whose confirms the test hands out one message at a time."""

    def __init__(self) -> None:
        super().__init__(Topology(base="gated"))
        self.waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()

    async def publish(
        self,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> None:
        confirm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((body, confirm))
        self._arrived.set()
        await confirm
        await super().publish(body, message_id=message_id, headers=headers, timeout=timeout)

    async def sent(self, count: int) -> list[bytes]:
        """The bodies of the first ``count`` messages sent, once they have all been sent."""
        async with asyncio.timeout(5):
            while len(self.waiting) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return [body for body, _ in self.waiting[:count]]

    def confirm(self, index: int, error: Exception | None = None) -> None:
        future = self.waiting[index][1]
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
async def gated() -> GatedQueue:
    queue = GatedQueue()
    await queue.start()
    return queue


def coalescing(queue: MemoryJobQueue, **bounds: int) -> CoalescingPublisher:
    options: dict[str, Any] = {"max_items": 100, "max_bytes": 1 << 20, "max_in_flight": 1}
    options.update(bounds)
    return CoalescingPublisher(queue, timeout=5.0, **options)


async def test_a_lone_publish_goes_out_at_once_and_returns_on_its_confirm(
    gated: GatedQueue,
) -> None:
    caller = asyncio.create_task(coalescing(gated).publish(KIND, [item("a")]))

    [body] = await gated.sent(1)
    await settle()
    assert not caller.done()
    gated.confirm(0)
    await caller

    assert jobs_of(body) == [("a", 0)]


async def test_callers_arriving_during_a_confirm_share_the_next_message(
    gated: GatedQueue,
) -> None:
    publisher = coalescing(gated)
    first = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)
    others = [asyncio.create_task(publisher.publish(KIND, [item(j)])) for j in "bcd"]
    await settle()

    assert len(gated.waiting) == 1
    gated.confirm(0)
    await first
    [_, second_body] = await gated.sent(2)
    await settle()
    assert not any(task.done() for task in others)
    gated.confirm(1)
    await asyncio.gather(*others)

    assert jobs_of(second_body) == [("b", 0), ("c", 0), ("d", 0)]


async def test_concurrent_publishes_are_packed_and_every_item_arrives_once(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    publisher = CoalescingPublisher(queue, max_items=1000, max_bytes=1 << 20, timeout=5.0)
    callers = [f"job-{n}" for n in range(60)]

    await asyncio.gather(
        *(publisher.publish(KIND, [item(job, i, 2) for i in range(2)]) for job in callers)
    )
    inbox = Inbox()
    await queue.consume(inbox, prefetch=100)
    received: list[tuple[str, int]] = []
    messages = 0
    while len(received) < 2 * len(callers):
        delivery = await inbox.next()
        received += jobs_of(delivery.body)
        messages += 1
        await delivery.ack()

    assert sorted(received) == sorted((job, i) for job in callers for i in range(2))
    assert messages < len(callers)
    assert await inbox.nothing_within(0.2)


async def test_small_callers_are_packed_up_to_max_items(gated: GatedQueue) -> None:
    publisher = coalescing(gated, max_items=3)
    first = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)
    others = [asyncio.create_task(publisher.publish(KIND, [item(j)])) for j in "bcdefg"]
    await settle()
    for index in range(2):
        gated.confirm(index)
        await gated.sent(index + 2)
    gated.confirm(2)
    await asyncio.gather(first, *others)

    assert [jobs_of(body) for body, _ in gated.waiting] == [
        [("a", 0)],
        [("b", 0), ("c", 0), ("d", 0)],
        [("e", 0), ("f", 0), ("g", 0)],
    ]


async def test_small_callers_are_packed_up_to_max_bytes(gated: GatedQueue) -> None:
    singles = [[item(j)] for j in "bcdefg"]
    limit = 60 + 3 * max(len(i) for [i] in singles)
    publisher = coalescing(gated, max_bytes=limit)
    first = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)
    others = [asyncio.create_task(publisher.publish(KIND, items)) for items in singles]
    await settle()
    for index in range(2):
        gated.confirm(index)
        await gated.sent(index + 2)
    gated.confirm(2)
    await asyncio.gather(first, *others)

    bodies = [body for body, _ in gated.waiting]
    assert all(len(body) <= limit for body in bodies)
    assert [len(jobs_of(body)) for body in bodies] == [1, 3, 3]


async def test_a_caller_beyond_max_items_is_refused_whole_and_nothing_is_sent(
    gated: GatedQueue,
) -> None:
    publisher = coalescing(gated, max_items=3)

    with pytest.raises(TooLargeForOneMessage) as refused:
        async with asyncio.timeout(2):  # waiting for a confirm instead fails the test
            await publisher.publish(KIND, [item("b", i, 4) for i in range(4)])

    assert "3 items" in str(refused.value)
    await settle()
    assert gated.waiting == []


async def test_a_caller_beyond_max_bytes_is_refused_whole_and_nothing_is_sent(
    gated: GatedQueue,
) -> None:
    items = [item("c", i, 9) for i in range(9)]
    limit = 60 + 3 * max(len(i) for i in items)
    publisher = coalescing(gated, max_bytes=limit)
    first = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)

    with pytest.raises(TooLargeForOneMessage) as refused:
        async with asyncio.timeout(2):  # waiting for a confirm instead fails the test
            await publisher.publish(KIND, items)

    assert f"{limit} bytes" in str(refused.value)
    gated.confirm(0)
    await first
    await settle()
    assert [jobs_of(body) for body, _ in gated.waiting] == [[("a", 0)]]


async def test_a_cancelled_publish_fails_its_callers_instead_of_confirming_them(
    gated: GatedQueue,
) -> None:
    publisher = coalescing(gated)
    caller = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)

    gated.waiting[0][1].cancel()  # the transport's publish ends in a CancelledError

    with pytest.raises(BrokerUnavailable):
        async with asyncio.timeout(2):
            await caller


async def test_wait_idle_cut_short_fails_the_callers_still_waiting(gated: GatedQueue) -> None:
    publisher = coalescing(gated)
    caller = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)

    # As the front's shutdown does: the timeout cancels the publish still awaiting its confirm.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(publisher.wait_idle(), 0.05)

    with pytest.raises(BrokerUnavailable):
        async with asyncio.timeout(2):
            await caller


async def test_a_caller_that_fits_in_one_message_is_never_split(gated: GatedQueue) -> None:
    publisher = coalescing(gated, max_items=4)
    first = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)
    small = asyncio.create_task(publisher.publish(KIND, [item("b", i, 2) for i in range(2)]))
    whole = asyncio.create_task(publisher.publish(KIND, [item("c", i, 3) for i in range(3)]))
    await settle()
    for index in range(2):
        gated.confirm(index)
        await gated.sent(index + 2)
    gated.confirm(2)
    await asyncio.gather(first, small, whole)

    assert [jobs_of(body) for body, _ in gated.waiting] == [
        [("a", 0)],
        [("b", 0), ("b", 1)],
        [("c", 0), ("c", 1), ("c", 2)],
    ]


async def test_a_caller_beyond_the_pending_backlog_is_refused_at_once(gated: GatedQueue) -> None:
    publisher = CoalescingPublisher(
        gated, max_items=1, max_bytes=1 << 20, timeout=5.0, max_pending=2
    )
    in_flight = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)
    waiting = [asyncio.create_task(publisher.publish(KIND, [item(j)])) for j in "bc"]
    await settle()

    with pytest.raises(BrokerUnavailable):
        async with asyncio.timeout(1):  # waiting instead of refusing fails the test
            await publisher.publish(KIND, [item("d")])
    for index in range(3):
        gated.confirm(index)
        await gated.sent(min(index + 2, 3))
    await asyncio.gather(in_flight, *waiting)
    assert [jobs_of(body) for body, _ in gated.waiting] == [[("a", 0)], [("b", 0)], [("c", 0)]]


async def test_a_failed_message_fails_exactly_its_callers(gated: GatedQueue) -> None:
    publisher = coalescing(gated, max_items=2)
    first = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)
    second = asyncio.create_task(publisher.publish(KIND, [item("b")]))
    third = asyncio.create_task(publisher.publish(KIND, [item("c")]))
    fourth = asyncio.create_task(publisher.publish(KIND, [item("d")]))
    await settle()

    gated.confirm(0)
    await gated.sent(2)
    gated.confirm(1, BrokerUnavailable("nacked"))
    await gated.sent(3)
    gated.confirm(2)
    results = await asyncio.gather(first, second, third, fourth, return_exceptions=True)

    assert results[0] is None
    assert isinstance(results[1], BrokerUnavailable)
    assert isinstance(results[2], BrokerUnavailable)
    assert results[3] is None


async def test_a_full_queue_reaches_the_caller_as_queue_full(
    memory_queue: MemoryQueueFactory,
) -> None:
    queue = await memory_queue(max_length=1)
    publisher = coalescing(queue)

    results = await asyncio.gather(
        publisher.publish(KIND, [item("a")]),
        publisher.publish(KIND, [item("b")]),
        return_exceptions=True,
    )

    assert results[0] is None
    assert isinstance(results[1], QueueFull)


async def test_a_cancelled_caller_leaves_the_others_to_be_published(gated: GatedQueue) -> None:
    publisher = coalescing(gated)
    first = asyncio.create_task(publisher.publish(KIND, [item("a")]))
    await gated.sent(1)
    leaving = asyncio.create_task(publisher.publish(KIND, [item("b")]))
    staying = asyncio.create_task(publisher.publish(KIND, [item("c")]))
    await settle()

    leaving.cancel()
    await settle()
    gated.confirm(0)
    [_, body] = await gated.sent(2)
    gated.confirm(1)
    await asyncio.gather(first, staying)

    assert leaving.cancelled()
    assert jobs_of(body) == [("c", 0)]


async def test_kinds_travel_in_separate_messages(job_queue: JobQueueFactory) -> None:
    queue = await job_queue()
    publisher = CoalescingPublisher(queue, max_items=100, max_bytes=1 << 20, timeout=5.0)

    await asyncio.gather(
        publisher.publish(MessageKind.ASSOCIATION, [item("a")]),
        publisher.publish(MessageKind.ASSOCIATION_DELETE, [item("b")]),
        publisher.publish(MessageKind.ASSOCIATION, [item("c")]),
    )
    inbox = Inbox()
    await queue.consume(inbox, prefetch=10)
    kinds: dict[str, str] = {}
    while len(kinds) < 3:
        delivery = await inbox.next()
        message = decode_message(delivery.body)
        kinds.update({i.job: message.kind for i in message.items})
        await delivery.ack()

    assert kinds == {"a": "association", "b": "association_delete", "c": "association"}


async def test_a_submitted_caller_shares_messages_and_its_future_ends_on_their_confirm(
    gated: GatedQueue,
) -> None:
    publisher = coalescing(gated)
    first = publisher.submit(KIND, [item("a")])
    await gated.sent(1)
    second = publisher.submit(KIND, [item("b")])
    third = asyncio.create_task(publisher.publish(KIND, [item("c")]))
    await settle()

    assert not first.done() and not second.done()
    gated.confirm(0)
    await settle()
    assert first.done() and first.exception() is None and not second.done()
    [_, second_body] = await gated.sent(2)
    gated.confirm(1, BrokerUnavailable("nacked"))
    await settle()

    assert jobs_of(second_body) == [("b", 0), ("c", 0)]
    assert isinstance(second.exception(), BrokerUnavailable)
    with pytest.raises(BrokerUnavailable):
        await third


async def test_a_submitted_caller_beyond_max_items_is_refused_at_once_and_nothing_is_sent(
    gated: GatedQueue,
) -> None:
    publisher = coalescing(gated, max_items=3)

    with pytest.raises(TooLargeForOneMessage):
        publisher.submit(KIND, [item("b", i, 4) for i in range(4)])

    await settle()
    assert gated.waiting == []
