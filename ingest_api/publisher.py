"""The coalescing publisher: group commit of job items into few confirmed messages.

Per message kind, while fewer than ``max_in_flight`` messages await their broker confirm, a
caller's items go out at once in a message of their own; otherwise they join the next pending
message, which goes out as soon as a confirm frees a slot. There is no timer: an idle publisher
adds no latency, a busy one packs many callers' items into one message. Each message is bounded
by ``max_items`` and ``max_bytes``. A caller's items always travel together in one message, so
that a request is either wholly confirmed or wholly refused, never half-queued: a caller whose
items cannot fit in one message is refused at once with ``TooLargeForOneMessage``.

A caller returns only once the message carrying its items is confirmed by the broker, and raises
``BrokerUnavailable`` (or ``QueueFull``) on any other ending of that publish: a nack, a timeout,
a lost connection, a bug, or a cancellation of the publish (a queue closed under it). At most
``max_pending`` messages wait behind the ones in flight; a caller that would need another is
refused at once with ``BrokerUnavailable``, so that no caller waits longer than about
``(max_pending + 1) * timeout`` (each message's wait for its confirm is bounded by
``timeout``). A caller cancelled while waiting takes its items out of messages not sent yet;
the other callers are unaffected.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.jobids import new_job_id
from schemas.messages import MessageKind, encode_envelope
from workers.ground import metrics
from workers.ground.errors import BrokerUnavailable, QueueFull
from workers.queue.base import JobQueue

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_PENDING",
    "CoalescingPublisher",
    "TooLargeForOneMessage",
]

# More messages in flight only split the same callers over more, smaller messages, and the
# broker's per-message cost dominates (bench/publisher_bench.py; figures in bench/results.md).
DEFAULT_MAX_IN_FLIGHT = 1

# Messages allowed to wait behind those in flight: bounds a caller's wait (module docstring).
DEFAULT_MAX_PENDING = 2

# Bytes of the envelope around the items: '{"v":1,"kind":"association_delete","items":[' + ']}'.
_ENVELOPE_OVERHEAD = len(encode_envelope(MessageKind.ASSOCIATION_DELETE, []))


class TooLargeForOneMessage(ValueError):
    """A caller's items cannot travel in one message: ``limit`` names the bound they exceed."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"the items of one request must fit in one message: {limit}")
        self.limit = limit


@dataclass(eq=False)
class _Ticket:
    """One caller: released when ``parts`` reaches zero, failed by the first failing part."""

    future: asyncio.Future[None]
    parts: int = 0


@dataclass(eq=False)
class _Batch:
    """Items of one message to be, with the tickets they belong to (one entry per caller)."""

    entries: list[tuple[_Ticket, list[bytes]]] = field(default_factory=list)
    items: int = 0
    size: int = _ENVELOPE_OVERHEAD

    def fits_all(self, items: Sequence[bytes], max_items: int, max_bytes: int) -> bool:
        added = sum(map(len, items)) + len(items)
        return self.items + len(items) <= max_items and self.size + added <= max_bytes

    def add_all(self, ticket: _Ticket, items: Sequence[bytes]) -> None:
        """Add a caller's ``items`` (the size counts a comma between any two items)."""
        if not items:
            return
        if not self.entries or self.entries[-1][0] is not ticket:
            self.entries.append((ticket, []))
            ticket.parts += 1
        self.entries[-1][1].extend(items)
        separators = len(items) if self.items else len(items) - 1
        self.items += len(items)
        self.size += sum(map(len, items)) + separators

    def remove(self, ticket: _Ticket) -> None:
        kept = [(t, items) for t, items in self.entries if t is not ticket]
        self.entries = kept
        self.items = sum(len(items) for _, items in kept)
        self.size = _ENVELOPE_OVERHEAD + sum(len(i) for _, items in kept for i in items)
        self.size += max(self.items - 1, 0)


@dataclass(eq=False)
class _Lane:
    """The state of one message kind."""

    in_flight: int = 0
    pending: deque[_Batch] = field(default_factory=deque)


class CoalescingPublisher:
    """Publishes items through ``queue``, packing concurrent callers (see module docstring).

    ``timeout`` bounds each message's wait for its confirm (passed to ``JobQueue.publish``).
    """

    def __init__(
        self,
        queue: JobQueue,
        *,
        max_items: int,
        max_bytes: int,
        timeout: float,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if min(max_items, max_bytes, max_in_flight, max_pending) < 1:
            raise ValueError("max_items, max_bytes, max_in_flight and max_pending must be >= 1")
        self._max_pending = max_pending
        self._queue = queue
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._lanes: dict[MessageKind, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, kind: MessageKind, encoded_items: Sequence[bytes]) -> None:
        """Return once every item is in a confirmed message; raise ``BrokerUnavailable`` else."""
        if not encoded_items:
            return
        lane, ticket = self._take(kind, encoded_items)
        try:
            await ticket.future
        except asyncio.CancelledError:
            self._withdraw(lane, ticket)
            raise

    def submit(self, kind: MessageKind, encoded_items: Sequence[bytes]) -> asyncio.Future[None]:
        """``publish`` without a coroutine: the future of the confirm of ``encoded_items`` (at
        least one), which ends as ``publish`` would return or raise. A refusal decided at once
        (``TooLargeForOneMessage``, a full backlog) is raised here. The items cannot be
        withdrawn: whoever submits waits for the outcome."""
        return self._take(kind, encoded_items)[1].future

    def _take(self, kind: MessageKind, encoded_items: Sequence[bytes]) -> tuple[_Lane, _Ticket]:
        self._check_fits_one_message(encoded_items)
        lane = self._lanes.get(kind)
        if lane is None:
            lane = self._lanes[kind] = _Lane()
        if len(lane.pending) >= self._max_pending and not lane.pending[-1].fits_all(
            encoded_items, self._max_items, self._max_bytes
        ):
            metrics.PUBLISH_FAILURES.labels(reason="backlog").inc()
            raise BrokerUnavailable(
                f"{len(lane.pending)} messages already wait for the broker to confirm earlier ones"
            )
        ticket = _Ticket(future=asyncio.get_running_loop().create_future())
        self._enqueue(lane, ticket, encoded_items)
        self._pump(kind, lane)
        return lane, ticket

    def _check_fits_one_message(self, items: Sequence[bytes]) -> None:
        if len(items) > self._max_items:
            raise TooLargeForOneMessage(f"at most {self._max_items} items per message")
        # What _Batch().fits_all says, without making a batch.
        if _ENVELOPE_OVERHEAD + sum(map(len, items)) + len(items) > self._max_bytes:
            raise TooLargeForOneMessage(f"at most {self._max_bytes} bytes of items per message")

    async def wait_idle(self) -> None:
        """Wait until every message handed to the queue is confirmed or failed."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _enqueue(self, lane: _Lane, ticket: _Ticket, items: Sequence[bytes]) -> None:
        # Only the last pending batch takes more items: earlier ones are full. A caller that
        # does not fit in its remaining room starts a batch of its own, so as not to be split
        # (publish checked that its items fit in one message).
        batch = lane.pending[-1] if lane.pending else None
        if batch is None or not batch.fits_all(items, self._max_items, self._max_bytes):
            batch = _Batch()
            lane.pending.append(batch)
        batch.add_all(ticket, items)

    def _withdraw(self, lane: _Lane, ticket: _Ticket) -> None:
        """Take a cancelled caller's items out of the batches not sent yet."""
        for batch in list(lane.pending):
            batch.remove(ticket)
            if not batch.entries:
                lane.pending.remove(batch)

    def _pump(self, kind: MessageKind, lane: _Lane) -> None:
        while lane.pending and lane.in_flight < self._max_in_flight:
            batch = lane.pending.popleft()
            lane.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(kind, lane, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, kind: MessageKind, lane: _Lane, batch: _Batch) -> None:
        items = [item for _, entry_items in batch.entries for item in entry_items]
        body = encode_envelope(kind, items)
        # Unconfirmed until the broker says otherwise: every ending but a confirm fails the
        # callers, a cancellation too (it is no Exception, so no except clause below sees it).
        error: BaseException | None = BrokerUnavailable("the publish ended without a confirm")
        started = time.perf_counter()
        try:
            await self._queue.publish(body, message_id=new_job_id(), timeout=self._timeout)
            error = None
        except QueueFull as exc:
            error = exc
            metrics.PUBLISH_FAILURES.labels(reason="queue_full").inc()
        except BrokerUnavailable as exc:
            error = exc
            metrics.PUBLISH_FAILURES.labels(reason="broker_unavailable").inc()
        except Exception as exc:  # a bug below must still release every caller
            error = BrokerUnavailable(f"publish failed: {exc!r}")
            error.__cause__ = exc
            metrics.PUBLISH_FAILURES.labels(reason="error").inc()
        else:
            metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
            metrics.ITEMS_PER_MESSAGE.labels(kind=kind.value).observe(len(items))
        finally:
            lane.in_flight -= 1
            self._settle(batch, error)
            self._pump(kind, lane)

    @staticmethod
    def _settle(batch: _Batch, error: BaseException | None) -> None:
        for ticket, _ in batch.entries:
            ticket.parts -= 1
            if ticket.future.done():
                continue
            if error is not None:
                # One exception object per caller: each raise grows its own traceback.
                own = type(error)(*error.args)
                own.__cause__ = error.__cause__ or error
                ticket.future.set_exception(own)
            elif ticket.parts == 0:
                ticket.future.set_result(None)
