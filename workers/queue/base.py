"""The ``JobQueue`` contract, shared by the RabbitMQ and the in-process implementation.

Contract (every implementation keeps it; ``tests/workers/queue`` checks it against each):

- ``publish`` returns only once the message is durably accepted (RabbitMQ: publisher confirm
  received). It raises ``BrokerUnavailable`` (a ``TransientError``) on nack, unroutable return,
  timeout, lost connection, and ``QueueFull`` when the work queue is at its maximum length.
  It never hangs past ``timeout``.
- Delivery is at least once: a message not acked when its consumer stops (or its connection
  dies) is delivered again, with ``Delivery.redelivered`` set where the transport knows it.
- ``Delivery.retry_later(delay)`` puts a message (the original body, or a replacement body that
  carries only the items still pending) back on the work queue no sooner than ``delay`` seconds
  from now, with the original's headers plus any given, and acks the original only after that
  publish is confirmed.
- ``Delivery.dead_letter(reason)`` moves the message to the dead-letter queue with ``reason``
  in its ``x-death-reason`` header and acks the original after that is confirmed.
- ``Delivery.dead_letter_items(body, reason)`` publishes ``body`` (items taken out of the
  message) to the dead-letter queue with ``reason``, confirmed, and leaves the delivery
  unsettled: the rest of the message is settled as usual.
- Replaying a dead letter drops the headers of the worker's retries (``RETRY_HEADERS``): a
  replayed item starts afresh.
- ``Delivery.requeue()`` hands the message back for immediate redelivery (used on shutdown).
- Exactly one of ``ack``, ``retry_later``, ``dead_letter``, ``requeue`` settles a delivery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from workers.ground.errors import BrokerUnavailable

if TYPE_CHECKING:
    from workers.ground.settings import Settings

DEATH_REASON_HEADER = "x-death-reason"
SCHEMA_VERSION_HEADER = "x-schema-version"
ENTITY_WAIT_SINCE_HEADER = "x-entity-wait-since"
"""On a retried message: when a worker first found its items' entities missing, as the text
of a number of seconds since the epoch."""
ENTITY_LAST_CALL_HEADER = "x-entity-last-call"
"""On a retried message: its items' wait is over, this look is their last."""
RETRY_HEADERS = (ENTITY_WAIT_SINCE_HEADER, ENTITY_LAST_CALL_HEADER)
"""Headers a replay from the dead-letter queue drops, with the broker's death records."""

__all__ = [
    "DEATH_REASON_HEADER",
    "ENTITY_LAST_CALL_HEADER",
    "ENTITY_WAIT_SINCE_HEADER",
    "RETRY_HEADERS",
    "SCHEMA_VERSION_HEADER",
    "BrokerUnavailable",
    "ConsumerHandle",
    "DeadLetter",
    "Delivery",
    "JobQueue",
    "MessageHandler",
    "Topology",
]


@dataclass(frozen=True, slots=True)
class Topology:
    """Names of everything a queue declares, all derived from one base name.

    Tests pass a unique base name so that concurrent runs do not share queues.
    """

    base: str = "ingest"
    # Retry delays available through the delay queues, in seconds, ascending. A requested
    # delay is rounded up to the next tier so that a retry never arrives early.
    retry_tiers: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    max_length: int = 1_000_000
    queue_type: str = "quorum"

    @property
    def exchange(self) -> str:
        return self.base

    @property
    def work_queue(self) -> str:
        return f"{self.base}.jobs"

    @property
    def dead_exchange(self) -> str:
        return f"{self.base}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.base}.dead"

    @property
    def work_routing_key(self) -> str:
        return "jobs"

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        """The topology the deployment's settings name."""
        return cls(
            base=settings.topology_name,
            max_length=settings.queue_max_length,
            queue_type=settings.queue_type,
        )

    def retry_queue(self, tier: float) -> str:
        return f"{self.base}.retry.{int(tier * 1000)}ms"

    def tier_for(self, delay: float) -> float:
        """The smallest tier not shorter than ``delay`` (the longest tier when none is)."""
        for tier in self.retry_tiers:
            if tier >= delay:
                return tier
        return self.retry_tiers[-1]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in the dead-letter queue, as ``dlq list`` shows it."""

    message_id: str
    reason: str
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)


class Delivery(Protocol):
    """One received message; settle it exactly once."""

    @property
    def body(self) -> bytes: ...

    @property
    def message_id(self) -> str: ...

    @property
    def redelivered(self) -> bool: ...

    @property
    def headers(self) -> Mapping[str, Any]: ...

    async def ack(self) -> None: ...

    async def retry_later(
        self, delay: float, body: bytes | None = None, headers: Mapping[str, Any] | None = None
    ) -> None: ...

    async def dead_letter(self, reason: str) -> None: ...

    async def dead_letter_items(self, body: bytes, reason: str) -> None: ...

    async def requeue(self) -> None: ...


MessageHandler = Callable[[Delivery], Awaitable[None]]


class ConsumerHandle(Protocol):
    async def stop(self) -> None:
        """Stop receiving new messages; deliveries already handed out may still be settled."""
        ...


class JobQueue(Protocol):
    """Publishes job messages and hands them to consumers (see the module docstring)."""

    topology: Topology

    async def start(self) -> None:
        """Connect and declare the topology (idempotent)."""
        ...

    async def close(self) -> None: ...

    @property
    def connected(self) -> bool:
        """Whether a publish could be confirmed right now (for ``/readyz``)."""
        ...

    async def publish(
        self,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Publish to the work queue; return only after the confirm (see module docstring)."""
        ...

    async def consume(self, handler: MessageHandler, *, prefetch: int) -> ConsumerHandle:
        """Start calling ``handler`` for each message, at most ``prefetch`` unsettled at once."""
        ...

    async def depth(self) -> int:
        """Messages waiting in the work queue (not counting unacked ones)."""
        ...

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first, without removing them."""
        ...

    async def replay_dead_letters(self, limit: int) -> int:
        """Move up to ``limit`` dead letters back to the work queue; return how many moved."""
        ...
