"""What only the RabbitMQ queue does: reconnecting, and refusing a conflicting topology."""

from __future__ import annotations

import pytest

from tests.backends import RabbitQueueFactory
from tests.workers.queue.support import Inbox, eventually
from workers.ground.errors import BrokerUnavailable, ConfigurationError
from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue

pytestmark = pytest.mark.rabbitmq


async def _connected(queue: RabbitJobQueue) -> bool:
    return queue.connected


async def test_publish_fails_at_once_while_reconnecting_then_works_again(
    rabbit_queue: RabbitQueueFactory,
) -> None:
    rabbit = await rabbit_queue(reconnect_interval=0.2)
    inbox = Inbox()
    await rabbit.consume(inbox, prefetch=4)
    assert rabbit.connection is not None and rabbit.connection.transport is not None

    await rabbit.connection.transport.connection.close(ConnectionError("network cut"))
    with pytest.raises(BrokerUnavailable):
        await rabbit.publish(b"lost", message_id="m-0", timeout=60)
    assert await eventually(lambda: _connected(rabbit))
    await rabbit.publish(b"after", message_id="m-1")
    delivery = await inbox.next()
    await delivery.ack()

    assert delivery.body == b"after"


async def test_declaring_a_topology_with_other_arguments_is_a_configuration_error(
    rabbit_queue: RabbitQueueFactory, amqp_url: str
) -> None:
    rabbit = await rabbit_queue()
    # Built by hand: the factory starts its queues, and starting this one is what is tested.
    other = RabbitJobQueue(amqp_url, Topology(base=rabbit.topology.base, max_length=7))

    with pytest.raises(ConfigurationError):
        await other.start()
    assert not other.connected
