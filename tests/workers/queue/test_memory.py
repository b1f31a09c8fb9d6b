"""What only the in-process queue does: warn that it is not durable."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from tests.backends import MemoryQueueFactory
from tests.workers.queue.support import Inbox
from workers.ground.errors import BrokerUnavailable


async def test_starting_the_memory_queue_warns_that_it_is_not_durable(
    memory_queue: MemoryQueueFactory,
) -> None:
    queue = await memory_queue(start=False)

    with capture_logs() as logs:
        await queue.start()

    assert [(e["event"], e["log_level"]) for e in logs] == [("queue.memory_not_durable", "warning")]


async def test_a_delivery_cannot_be_settled_once_the_queue_took_it_back(
    memory_queue: MemoryQueueFactory,
) -> None:
    queue = await memory_queue()
    await queue.publish(b"x", message_id="m-1")
    inbox = Inbox()
    await queue.consume(inbox, prefetch=1)
    delivery = await inbox.next()

    await queue.close()

    with pytest.raises(BrokerUnavailable):
        await delivery.ack()
    assert await queue.depth() == 1
