"""The ``JobQueue`` contract, checked against the memory queue and the real RabbitMQ
(the ``job_queue`` fixture makes queues of each in turn)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.backends import JobQueueFactory
from tests.workers.queue.support import Inbox, eventually
from workers.ground.errors import BrokerUnavailable, QueueFull
from workers.queue.base import DEATH_REASON_HEADER, SCHEMA_VERSION_HEADER, JobQueue
from workers.queue.rabbit import RabbitJobQueue


async def test_a_published_message_is_consumed_with_its_id_and_headers(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    await queue.publish(b'{"n":1}', message_id="m-1", headers={"x-origin": "test"})
    inbox = Inbox()
    await queue.consume(inbox, prefetch=4)

    delivery = await inbox.next()
    await delivery.ack()

    assert delivery.body == b'{"n":1}'
    assert delivery.message_id == "m-1"
    assert delivery.headers["x-origin"] == "test"
    assert delivery.headers[SCHEMA_VERSION_HEADER] == 1
    assert not delivery.redelivered
    assert await inbox.nothing_within(0.3)


async def test_acked_messages_leave_the_queue(job_queue: JobQueueFactory) -> None:
    queue = await job_queue()
    for n in range(3):
        await queue.publish(b"x", message_id=f"m-{n}")
    assert await eventually(lambda: _depth_is(queue, 3))
    inbox = Inbox()
    await queue.consume(inbox, prefetch=8)
    for _ in range(3):
        await (await inbox.next()).ack()

    assert await eventually(lambda: _depth_is(queue, 0))


async def test_a_consumer_gets_no_more_than_prefetch_unsettled_messages(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    for n in range(5):
        await queue.publish(b"x", message_id=f"m-{n}")
    inbox = Inbox()
    await queue.consume(inbox, prefetch=2)

    first, second = await inbox.next(), await inbox.next()
    assert await inbox.nothing_within(0.3)
    await first.ack()
    third = await inbox.next()

    assert {first.message_id, second.message_id, third.message_id} == {"m-0", "m-1", "m-2"}


async def test_an_unacked_message_whose_consumer_stops_is_redelivered(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    await queue.publish(b"unfinished", message_id="m-1")
    inbox = Inbox()
    handle = await queue.consume(inbox, prefetch=1)
    await inbox.next()

    await handle.stop()
    await queue.close()
    await queue.start()
    again = Inbox()
    await queue.consume(again, prefetch=1)
    delivery = await again.next()
    await delivery.ack()

    assert delivery.body == b"unfinished"
    assert delivery.message_id == "m-1"
    assert delivery.redelivered


async def test_a_delivery_handed_out_before_stop_can_still_be_acked(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    await queue.publish(b"in flight", message_id="m-1")
    inbox = Inbox()
    handle = await queue.consume(inbox, prefetch=1)
    delivery = await inbox.next()

    await handle.stop()
    await delivery.ack()
    await queue.close()
    await queue.start()
    again = Inbox()
    await queue.consume(again, prefetch=1)

    assert await again.nothing_within(0.5)


async def test_a_requeued_message_is_delivered_again(job_queue: JobQueueFactory) -> None:
    queue = await job_queue()
    await queue.publish(b"later", message_id="m-1")
    inbox = Inbox()
    await queue.consume(inbox, prefetch=1)

    await (await inbox.next()).requeue()
    delivery = await inbox.next()
    await delivery.ack()

    assert delivery.message_id == "m-1"
    assert delivery.redelivered


async def test_retry_later_delivers_the_replacement_body_no_sooner_than_the_delay(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    await queue.publish(b"all items", message_id="m-1", headers={"x-origin": "test"})
    inbox = Inbox()
    await queue.consume(inbox, prefetch=4)
    first = await inbox.next()

    started = time.monotonic()
    await first.retry_later(0.3, body=b"pending items")
    retried = await inbox.next()
    waited = time.monotonic() - started
    await retried.ack()

    assert retried.body == b"pending items"
    assert retried.message_id == "m-1"
    assert retried.headers["x-origin"] == "test"
    assert waited >= 0.3  # rounded up to the 0.5 s tier, never early
    assert await inbox.nothing_within(0.3)


async def test_retry_later_without_a_body_delivers_the_original_again(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    await queue.publish(b"original", message_id="m-1")
    inbox = Inbox()
    await queue.consume(inbox, prefetch=4)

    await (await inbox.next()).retry_later(0.1)
    retried = await inbox.next()
    await retried.ack()

    assert retried.body == b"original"


async def test_a_dead_letter_keeps_its_reason_and_can_be_replayed(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    await queue.publish(b"poison", message_id="m-1")
    inbox = Inbox()
    await queue.consume(inbox, prefetch=4)
    await (await inbox.next()).dead_letter("undecodable: not JSON")

    assert await eventually(lambda: _dead_count_is(queue, 1))
    listed = await queue.dead_letters(10)
    listed_again = await queue.dead_letters(10)
    moved = await queue.replay_dead_letters(10)
    replayed = await inbox.next()
    await replayed.ack()

    assert [(d.message_id, d.reason, d.body) for d in listed] == [
        ("m-1", "undecodable: not JSON", b"poison")
    ]
    assert listed[0].headers[DEATH_REASON_HEADER] == "undecodable: not JSON"
    assert [d.message_id for d in listed_again] == ["m-1"]
    assert moved == 1
    assert replayed.body == b"poison"
    assert DEATH_REASON_HEADER not in replayed.headers
    assert await queue.dead_letters(10) == []


async def test_dead_letters_lists_at_most_limit_oldest_first(job_queue: JobQueueFactory) -> None:
    queue = await job_queue()
    for n in range(3):
        await queue.publish(b"poison", message_id=f"m-{n}")
    inbox = Inbox()
    await queue.consume(inbox, prefetch=1)
    for _ in range(3):
        await (await inbox.next()).dead_letter("bad")

    assert await eventually(lambda: _dead_count_is(queue, 3))
    assert [d.message_id for d in await queue.dead_letters(2)] == ["m-0", "m-1"]


async def test_a_full_queue_refuses_publishes_with_queue_full(job_queue: JobQueueFactory) -> None:
    queue = await job_queue(max_length=2)

    with pytest.raises(QueueFull):
        async with asyncio.timeout(20):
            for n in range(10):
                await queue.publish(b"x", message_id=f"m-{n}", timeout=5)

    assert await queue.depth() <= 3


async def test_publish_after_losing_the_connection_fails_at_once(
    job_queue: JobQueueFactory,
) -> None:
    queue = await job_queue()
    await lose_connection(queue)

    assert not queue.connected
    with pytest.raises(BrokerUnavailable):
        # The guard only keeps a regression from hanging the suite for the full 60 s.
        async with asyncio.timeout(10):
            await queue.publish(b"x", message_id="m-1", timeout=60)


async def lose_connection(queue: JobQueue) -> None:
    """Cut the queue off its broker: RabbitMQ's connection closes, the memory queue closes."""
    if isinstance(queue, RabbitJobQueue):
        assert queue.connection is not None
        await queue.connection.close()
    else:
        await queue.close()


async def _depth_is(queue: JobQueue, expected: int) -> bool:
    return await queue.depth() == expected


async def _dead_count_is(queue: JobQueue, expected: int) -> bool:
    return len(await queue.dead_letters(expected + 1)) == expected
