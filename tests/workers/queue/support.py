"""Helpers of the queue tests: a handler that records deliveries, and waiting for a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from workers.queue.base import Delivery


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
