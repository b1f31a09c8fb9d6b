"""An in-process ``JobQueue`` with the RabbitMQ queue's semantics, for ``dev`` and tests.

It is a real implementation, not a mock: publish is refused with ``QueueFull`` at
``topology.max_length``, consumers get at most ``prefetch`` unsettled deliveries, ``retry_later``
delivers no sooner than the delay tier, dead letters keep their reason, and every delivery still
unsettled when the queue is closed is handed out again (``redelivered=True``) once the queue is
started and consumed again. Nothing survives the process: ``start`` logs a loud warning.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.messages import SCHEMA_VERSION
from workers.ground.errors import BrokerUnavailable, QueueFull
from workers.ground.logs import get_logger
from workers.queue.base import (
    DEATH_REASON_HEADER,
    RETRY_HEADERS,
    SCHEMA_VERSION_HEADER,
    DeadLetter,
    MessageHandler,
    Topology,
)

__all__ = ["MemoryJobQueue"]

log = get_logger(__name__)


@dataclass(slots=True)
class _Message:
    body: bytes
    message_id: str
    headers: dict[str, Any]
    redelivered: bool = False


@dataclass(eq=False, slots=True)
class _Consumer:
    handler: MessageHandler
    prefetch: int
    # insertion-ordered: oldest delivery first
    unsettled: dict[MemoryDelivery, None] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stopped: bool = False


class MemoryDelivery:
    """A message handed to a consumer of a ``MemoryJobQueue``; settle it exactly once.

    Settling twice raises ``RuntimeError``; settling after the queue was closed (the message has
    already gone back to the queue) raises ``BrokerUnavailable``.
    """

    def __init__(self, queue: MemoryJobQueue, consumer: _Consumer, message: _Message) -> None:
        self._queue = queue
        self._consumer = consumer
        self._message = message
        self._settled = False
        self._void = False

    @property
    def body(self) -> bytes:
        return self._message.body

    @property
    def message_id(self) -> str:
        return self._message.message_id

    @property
    def redelivered(self) -> bool:
        return self._message.redelivered

    @property
    def headers(self) -> Mapping[str, Any]:
        return self._message.headers

    def _settle(self) -> None:
        if self._settled:
            raise RuntimeError(f"delivery {self.message_id} is already settled")
        if self._void:
            raise BrokerUnavailable("the queue was closed; the message will be redelivered")
        self._settled = True
        self._consumer.unsettled.pop(self, None)
        self._queue._dispatch()

    async def ack(self) -> None:
        self._settle()

    async def retry_later(
        self, delay: float, body: bytes | None = None, headers: Mapping[str, Any] | None = None
    ) -> None:
        self._settle()
        message = _Message(
            body=self._message.body if body is None else body,
            message_id=self._message.message_id,
            headers={**self._message.headers, **(headers or {})},
        )
        self._queue._schedule(self._queue.topology.tier_for(delay), message)

    async def dead_letter(self, reason: str) -> None:
        self._settle()
        self._queue._bury(self._message, reason)

    async def dead_letter_items(self, body: bytes, reason: str) -> None:
        if self._settled:
            raise RuntimeError(f"delivery {self.message_id} is already settled")
        if self._void:
            raise BrokerUnavailable("the queue was closed; the message will be redelivered")
        part = _Message(body, self._message.message_id, dict(self._message.headers))
        self._queue._bury(part, reason)

    async def requeue(self) -> None:
        self._settle()
        self._message.redelivered = True
        self._queue._ready.appendleft(self._message)
        self._queue._dispatch()

    def _void_and_return(self) -> None:
        """The queue closed under this delivery: the message goes back to be redelivered."""
        self._void = True
        self._message.redelivered = True
        self._queue._ready.appendleft(self._message)


class _MemoryConsumerHandle:
    def __init__(self, queue: MemoryJobQueue, consumer: _Consumer) -> None:
        self._queue = queue
        self._consumer = consumer

    async def stop(self) -> None:
        """Stop handing out messages; deliveries already handed out may still be settled."""
        self._consumer.stopped = True
        with contextlib.suppress(ValueError):
            self._queue._consumers.remove(self._consumer)


class MemoryJobQueue:
    """The in-process ``JobQueue`` (see the module docstring and ``workers.queue.base``)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._ready: deque[_Message] = deque()
        self._dead: deque[DeadLetter] = deque()
        self._consumers: list[_Consumer] = []
        self._all_consumers: list[_Consumer] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._running = False

    async def start(self) -> None:
        if not self._running:
            log.warning(
                "queue.memory_not_durable",
                detail="in-process queue: every queued, delayed and dead message is lost when "
                "this process exits; set AMQP_URL to use RabbitMQ",
            )
        self._running = True
        self._dispatch()

    async def close(self) -> None:
        """Stop every consumer; unsettled deliveries go back to the queue as redelivered."""
        self._running = False
        tasks: list[asyncio.Task[None]] = []
        for consumer in self._all_consumers:
            consumer.stopped = True
            # Newest first, so that appendleft leaves the oldest at the head.
            for delivery in reversed(list(consumer.unsettled)):
                delivery._void_and_return()
            consumer.unsettled.clear()
            tasks.extend(consumer.tasks)
        self._consumers.clear()
        self._all_consumers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def connected(self) -> bool:
        return self._running

    async def publish(
        self,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Append to the work queue; ``QueueFull`` at max length, ``BrokerUnavailable`` closed."""
        if not self._running:
            raise BrokerUnavailable("the in-process queue is closed")
        if len(self._ready) >= self.topology.max_length:
            raise QueueFull(f"{self.topology.work_queue} holds {len(self._ready)} messages")
        all_headers: dict[str, Any] = {SCHEMA_VERSION_HEADER: SCHEMA_VERSION}
        all_headers.update(headers or {})
        self._ready.append(_Message(body=body, message_id=message_id, headers=all_headers))
        self._dispatch()

    async def consume(self, handler: MessageHandler, *, prefetch: int) -> _MemoryConsumerHandle:
        if not self._running:
            raise BrokerUnavailable("the in-process queue is closed")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        consumer = _Consumer(handler=handler, prefetch=prefetch)
        self._consumers.append(consumer)
        self._all_consumers.append(consumer)
        self._dispatch()
        return _MemoryConsumerHandle(self, consumer)

    async def depth(self) -> int:
        return len(self._ready)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        return list(self._dead)[: max(limit, 0)]

    async def replay_dead_letters(self, limit: int) -> int:
        moved = 0
        while self._dead and moved < limit:
            dead = self._dead.popleft()
            dropped = (DEATH_REASON_HEADER, *RETRY_HEADERS)
            headers = {k: v for k, v in dead.headers.items() if k not in dropped}
            self._ready.append(
                _Message(body=dead.body, message_id=dead.message_id, headers=headers)
            )
            moved += 1
        self._dispatch()
        return moved

    # internals --------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Hand ready messages to consumers with free prefetch slots, round robin."""
        if not self._running:
            return
        progressed = True
        while self._ready and progressed:
            progressed = False
            for consumer in list(self._consumers):
                if not self._ready:
                    break
                if consumer.stopped or len(consumer.unsettled) >= consumer.prefetch:
                    continue
                delivery = MemoryDelivery(self, consumer, self._ready.popleft())
                consumer.unsettled[delivery] = None
                task = asyncio.get_running_loop().create_task(self._run(consumer, delivery))
                consumer.tasks.add(task)
                task.add_done_callback(consumer.tasks.discard)
                progressed = True

    async def _run(self, consumer: _Consumer, delivery: MemoryDelivery) -> None:
        try:
            await consumer.handler(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("queue.handler_failed", message_id=delivery.message_id)
            if not delivery._settled and not delivery._void:
                await delivery.dead_letter(f"handler failed: {exc!r}")

    def _schedule(self, delay: float, message: _Message) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def arrive() -> None:
            self._timers.discard(handle)
            self._ready.append(message)
            self._dispatch()

        handle = loop.call_later(delay, arrive)
        self._timers.add(handle)

    def _bury(self, message: _Message, reason: str) -> None:
        headers = dict(message.headers)
        headers[DEATH_REASON_HEADER] = reason
        self._dead.append(
            DeadLetter(
                message_id=message.message_id, reason=reason, body=message.body, headers=headers
            )
        )
