"""Helpers of the queue tests: queue factories per backend and a recording handler."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from workers.queue.base import Delivery, JobQueue, Topology
from workers.queue.memory import MemoryJobQueue
from workers.queue.rabbit import RabbitJobQueue

FAST_TIERS = (0.2, 0.5, 1.0)


@dataclass
class QueueFactory:
    """Builds started queues of one backend and knows how to cut them off the broker."""

    backend: str
    base: str
    amqp_url: str | None = None
    made: list[JobQueue] = field(default_factory=list)

    async def make(self, *, max_length: int = 10_000) -> JobQueue:
        topology = Topology(base=self.base, retry_tiers=FAST_TIERS, max_length=max_length)
        queue: JobQueue
        if self.backend == "rabbit":
            assert self.amqp_url is not None
            queue = RabbitJobQueue(self.amqp_url, topology)
        else:
            queue = MemoryJobQueue(topology)
        await queue.start()
        self.made.append(queue)
        return queue

    async def lose_connection(self, queue: JobQueue) -> None:
        if isinstance(queue, RabbitJobQueue):
            assert queue.connection is not None
            await queue.connection.close()
        else:
            await queue.close()

    async def cleanup(self) -> None:
        for queue in self.made:
            if isinstance(queue, RabbitJobQueue):
                await queue.start()  # reconnects when a test cut the connection
                await queue.delete_topology()
            await queue.close()


class Inbox:
    """A handler that keeps every delivery it receives, for the test to take in order."""

    def __init__(self) -> None:
        self._deliveries: asyncio.Queue[Delivery] = asyncio.Queue()

    async def __call__(self, delivery: Delivery) -> None:
        await self._deliveries.put(delivery)

    async def next(self, within: float = 10.0) -> Delivery:
        async with asyncio.timeout(within):
            return await self._deliveries.get()

    async def nothing_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._deliveries.get()
        except TimeoutError:
            return True
        return False


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> bool:
    """Whether ``check`` comes to hold within ``within`` seconds (brokers count asynchronously)."""
    for _ in range(int(within / 0.05)):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return await check()
