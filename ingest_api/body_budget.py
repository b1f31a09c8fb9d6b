"""A bound on the bytes of request bodies being handled at once, so memory stays bounded.

A body grows several-fold while it is handled (parsed JSON, checked items, encoded queue
items: a bulk of nested entities about 8x), and nothing else limits how many large bodies are
in flight: a few dozen clients at the body limit would exhaust a pod's memory. Before a request
with a body is handled it reserves its ``Content-Length`` (the body limit when it is chunked)
from ``capacity`` bytes, and gives them back once it is answered. A request that does not fit
waits, first come first served, for up to ``wait`` seconds, then gets a 503 with
``Retry-After``. A request larger than the whole capacity is let in when nothing else is in
flight, so that a capacity below the body limit cannot starve it.

Reserving is the hot path of every write: when there is room and nobody waits, it is a
comparison and an addition, with no await.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from aiohttp import web

from ingest_api.errors import ApiError
from workers.ground import metrics

__all__ = ["BODY_BUDGET", "BodyBudget", "reserved_size"]


class BodyBudget:
    """Bytes of request bodies in flight, at most ``capacity`` (see the module docstring)."""

    def __init__(self, capacity: int, wait: float) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.wait = wait
        self.in_flight = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        # Read when scraped, not set on every request (the newest budget of the process).
        metrics.HTTP_BODY_BYTES_IN_FLIGHT.set_function(lambda: self.in_flight)

    def _fits(self, size: int) -> bool:
        return self.in_flight == 0 or self.in_flight + size <= self.capacity

    def take_now(self, size: int) -> bool:
        """Reserve ``size`` bytes if that needs no wait (nobody waits and they fit)."""
        if not self._waiters and self._fits(size):
            self._take(size)
            return True
        return False

    async def admit(self, size: int) -> None:
        """Reserve ``size`` bytes for a request, or refuse it: 503 ``too_many_large_bodies``
        with ``Retry-After`` when they could not be had within ``wait`` seconds."""
        if self.take_now(size):
            return
        if not await self.acquire(size):
            metrics.BACKPRESSURE_RESPONSES.inc()
            raise ApiError(
                503,
                "too_many_large_bodies",
                "Too many large request bodies are being handled; retry later.",
                headers={"Retry-After": str(max(1, math.ceil(self.wait)))},
            )

    async def acquire(self, size: int) -> bool:
        """Reserve ``size`` bytes; False when they could not be had within ``wait`` seconds."""
        if not self._waiters and self._fits(size):
            self._take(size)
            return True
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, granted)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.wait):
                await asyncio.shield(granted)
            return True
        except TimeoutError:
            return self._withdraw(entry)
        except asyncio.CancelledError:
            if not self._withdraw(entry):
                raise
            self.release(size)  # granted just as the caller went away
            raise

    def _withdraw(self, entry: tuple[int, asyncio.Future[None]]) -> bool:
        """Take a waiter out; True when it had been granted meanwhile (it holds its bytes)."""
        granted = entry[1]
        if granted.done():
            return True
        self._waiters.remove(entry)
        granted.cancel()
        self._grant()  # a large waiter gone may let smaller ones behind it in
        return False

    def release(self, size: int) -> None:
        """Give back ``size`` bytes reserved by ``acquire``."""
        self.in_flight -= size
        self._grant()

    def _take(self, size: int) -> None:
        self.in_flight += size

    def _grant(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, granted = self._waiters.popleft()
            self._take(size)
            granted.set_result(None)


BODY_BUDGET: web.AppKey[BodyBudget] = web.AppKey("body_budget")


def reserved_size(request: web.Request, max_body: int) -> int | None:
    """Bytes to reserve for ``request``: none without a body, or for one that the view will
    refuse as too large without reading it."""
    if not request.body_exists:
        return None
    length = request.content_length
    if length is None:
        return max_body  # chunked: it may grow up to the limit
    return length if length <= max_body else None
