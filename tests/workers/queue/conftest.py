"""Every contract test runs against the memory queue and the real RabbitMQ.

Each RabbitMQ test uses a topology of its own (``unique_name``) and deletes it afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.workers.queue.support import QueueFactory


@pytest.fixture(params=["memory", pytest.param("rabbit", marks=pytest.mark.rabbitmq)])
async def queues(request: pytest.FixtureRequest, unique_name: str) -> AsyncIterator[QueueFactory]:
    amqp_url = request.getfixturevalue("amqp_url") if request.param == "rabbit" else None
    factory = QueueFactory(backend=request.param, base=unique_name, amqp_url=amqp_url)
    try:
        yield factory
    finally:
        await factory.cleanup()
