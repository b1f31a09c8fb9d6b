"""The worker loop: receive messages, decide them with ``workers.planning``, write, settle.

Per message: decode (undecodable -> dead-letter queue), one ``existing_entity_ids`` read for
the IDs not in the entity cache, rule matching in memory, one ``write_batch`` (which also
records the items still waiting for an entity), then one settlement: ``ack``, or
``retry_later`` with the waiting items (only after the write, and the transport acks the
original only once the retry is confirmed). The retry carries, in ``ENTITY_WAIT_SINCE_HEADER``,
when a worker first found the entities missing: the entity wait counts from then. Nothing is
acked before its write, and a crash at any point leaves the message to be redelivered, which
the store's idempotent writes make harmless.

A failing item fails alone: when deciding or writing a message raises anything but a
transient error, the message's items are split in halves until the failing ones are alone
(the others are written normally); each failing item's job records it ``failed`` with the
reason, and the failing items go to the dead-letter queue in a message of their own
(``handler_error: ...``), one per distinct reason.

Transient failures retry the whole message in process with exponential backoff (capped at
5 s): a store outage without limit while the worker runs. A broker failure is retried a few
times, then the message is requeued: a delivery whose channel died can never be settled, and
the broker redelivers it on the new channel anyway. On shutdown the message is requeued. Any
other exception while settling dead-letters the message rather than lose or spin it.

While it runs, a worker also removes expired jobs and their outcomes from the store at start and
every ``settings.job_purge_seconds`` (``workers.job_purge.JobPurger``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from schemas import RejectionCode
from schemas.messages import (
    AssociationItem,
    ItemMeta,
    MessageKind,
    decode_message,
    encode_envelope,
    encode_item,
)
from workers.entity_cache import EntityCache
from workers.ground import metrics
from workers.ground.errors import BrokerUnavailable, TransientError
from workers.ground.logs import get_logger
from workers.ground.settings import Settings
from workers.job_purge import JobPurger
from workers.planning import (
    Message,
    Plan,
    failed_items_batch,
    needed_entity_ids,
    plan_message,
    retry_delay,
)
from workers.queue.base import (
    ENTITY_LAST_CALL_HEADER,
    ENTITY_WAIT_SINCE_HEADER,
    ConsumerHandle,
    Delivery,
    JobQueue,
)
from workers.rules_cache import RulesCache
from workers.salvage import Salvaged, salvage_message, validation_reason
from workers.store.base import Store
from workers.store.records import BatchResult, Outcome

log = get_logger(__name__)

MAX_BACKOFF = 5.0
FIRST_BACKOFF = 0.1
MAX_BROKER_ATTEMPTS = 4


class Worker:
    """Consumes ``queue.topology.work_queue`` and writes outcomes to ``store``; meanwhile it
    removes expired jobs from the store every ``settings.job_purge_seconds`` (``JobPurger``).

    ``start`` loads the association rules (unless a started ``RulesCache`` is passed in) and
    begins consuming with ``settings.worker_prefetch`` unsettled messages and
    ``settings.worker_concurrency`` handled at once. ``stop(timeout)`` stops consuming,
    requeues received messages not yet started, waits up to ``timeout`` seconds for those in
    flight and leaves any still unfinished unsettled (the transport redelivers them). The
    queue and the store are opened and closed by the caller, not by the worker.
    """

    def __init__(
        self,
        queue: JobQueue,
        store: Store,
        settings: Settings,
        *,
        rules: RulesCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._store = store
        self._settings = settings
        self._owns_rules = rules is None
        self._rules = rules or RulesCache(store, settings.types_refresh_seconds)
        self._purger = JobPurger(
            store, job_ttl=settings.job_ttl, interval=settings.job_purge_seconds, clock=clock
        )
        self._clock = clock
        self._cache = EntityCache(settings.entity_cache_size)
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._stopping = asyncio.Event()
        self._consumer: ConsumerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: dict[asyncio.Task[None], Delivery] = {}

    @property
    def entity_cache(self) -> EntityCache:
        return self._cache

    async def start(self) -> None:
        if self._owns_rules:
            await self._rules.start()
        self._consumer = await self._queue.consume(
            self._on_delivery, prefetch=self._settings.worker_prefetch
        )
        self._purger.start()
        log.info(
            "worker.started",
            queue=self._queue.topology.work_queue,
            prefetch=self._settings.worker_prefetch,
            concurrency=self._settings.worker_concurrency,
        )

    async def stop(self, timeout: float) -> None:
        self._stopping.set()
        await self._purger.stop()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(TransientError):
                await consumer.stop()
        # Received but not started: hand back at once rather than start new work.
        for task, delivery in list(self._waiting.items()):
            task.cancel()
            await _quietly(delivery.requeue)
        self._waiting.clear()
        tasks = set(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
                log.warning("worker.unfinished", messages=len(late))
        if self._owns_rules:
            await self._rules.stop()
        log.info("worker.stopped")

    # receiving ---------------------------------------------------------------------------

    async def _on_delivery(self, delivery: Delivery) -> None:
        if self._stopping.is_set():
            await _quietly(delivery.requeue)
            return
        task = asyncio.create_task(self._run(delivery))
        self._tasks.add(task)
        self._waiting[task] = delivery
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._waiting.pop(task, None)

    async def _run(self, delivery: Delivery) -> None:
        async with self._slots:
            task = asyncio.current_task()
            if task is not None:
                self._waiting.pop(task, None)
            if self._stopping.is_set():
                await _quietly(delivery.requeue)
                return
            metrics.WORKER_IN_FLIGHT.inc()
            try:
                await self._settle_with_retries(delivery)
            finally:
                metrics.WORKER_IN_FLIGHT.dec()

    async def _settle_with_retries(self, delivery: Delivery) -> None:
        backoff = FIRST_BACKOFF
        broker_failures = 0
        while True:
            try:
                result = await self._handle(delivery)
            except TransientError as exc:
                dependency = "broker" if isinstance(exc, BrokerUnavailable) else "store"
                broker_failures += dependency == "broker"
                metrics.TRANSIENT_FAILURES.labels(dependency).inc()
                log.warning(
                    "message.retrying",
                    message_id=delivery.message_id,
                    dependency=dependency,
                    error=str(exc),
                    backoff=backoff,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                # A delivery whose channel died can never be settled: after a few broker
                # failures hand it back (or, if even that fails, leave it to the redelivery
                # that the channel's loss causes) instead of holding a slot forever.
                if not self._stopping.is_set() and broker_failures < MAX_BROKER_ATTEMPTS:
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                result = await _give_back(delivery)
            except Exception as exc:
                # A failure that is not transient would fail forever: park the message in the
                # dead-letter queue, where it can be seen and replayed once fixed.
                log.exception("message.failed", message_id=delivery.message_id)
                try:
                    await self._dead_letter(delivery, f"handler_error: {exc!r}"[:500])
                    result = "dead_lettered"
                except TransientError:
                    result = await _give_back(delivery)
            metrics.MESSAGES_HANDLED.labels(result).inc()
            return

    # handling ----------------------------------------------------------------------------

    async def _handle(self, delivery: Delivery) -> str:
        """Decide, write and settle one message; the result label of ``MESSAGES_HANDLED``."""
        outcome = _Handled()
        decoded: Message | None
        try:
            decoded = whole = decode_message(delivery.body)
        except (ValidationError, ValueError) as exc:
            # The other items of a sound envelope are handled; only the bad ones fail.
            salvaged = salvage_message(delivery.body)
            if salvaged is None or not (salvaged.message or _recordable(salvaged)):
                await self._dead_letter(delivery, validation_reason(exc))
                return "dead_lettered"
            decoded = salvaged.message
            outcome.failed.extend(
                _Failed(bad.meta, bad.encoded, bad.reason) for bad in salvaged.unreadable
            )
            kind = _kind_of(delivery.body)
        else:
            kind = MessageKind(whole.kind)
        look = _look_of(delivery.headers)
        if decoded is not None:
            metrics.WORKER_BATCH_ITEMS.observe(len(decoded.items))
            await self._apply_isolating(decoded, look, outcome)
        if outcome.failed:
            await self._fail_items(delivery, kind, look.since is not None, outcome.failed)
        if not outcome.pending:
            await delivery.ack()
            return "dead_lettered_items" if outcome.failed else "acked"
        assert decoded is not None  # only decoded items wait
        message = decoded
        body = (
            None
            if len(outcome.pending) == len(message.items)
            else encode_envelope(kind, [encode_item(item) for item in outcome.pending])
        )
        first_missing = min(outcome.waiting_since)
        delay = retry_delay(
            first_missing,
            self._clock(),
            self._settings.entity_wait,
            self._queue.topology.retry_tiers[0],
        )
        # As text: AMQP tables carry floats in single precision, about a minute off today.
        headers = {ENTITY_WAIT_SINCE_HEADER: repr(first_missing)}
        if outcome.wait_over:
            headers[ENTITY_LAST_CALL_HEADER] = "1"
        await delivery.retry_later(delay, body, headers)
        metrics.ITEM_RETRIES.labels("entity_not_found").inc(len(outcome.pending))
        log.debug("items.waiting", items=len(outcome.pending), delay=delay)
        return "retried"

    async def _apply_isolating(self, message: Message, look: _Look, outcome: _Handled) -> None:
        """Decide and write ``message``; when that fails for a reason other than a transient
        one, apply each half on its own, down to single items, which are the failing ones."""
        try:
            plan = await self._apply(message, look)
        except TransientError:
            raise
        except Exception as exc:
            if len(message.items) == 1:
                log.exception(
                    "item.failed",
                    job_id=message.items[0].job,
                    index=message.items[0].index,
                    error=repr(exc),
                )
                item = message.items[0]
                reason = f"handler_error: {exc!r}"[:500]
                outcome.failed.append(_Failed(item, encode_item(item), reason))
                return
            half = len(message.items) // 2
            for part in (message.items[:half], message.items[half:]):
                await self._apply_isolating(
                    message.model_copy(update={"items": part}), look, outcome
                )
            return
        if plan.pending:
            outcome.pending.extend(plan.pending)
            outcome.waiting_since.append(plan.waiting_since)
            outcome.wait_over = outcome.wait_over or plan.wait_over

    async def _apply(self, message: Message, look: _Look) -> Plan:
        """Decide ``message`` and write what it changes; the plan."""
        plan = await self._plan(message, look)
        if plan.writes_anything:
            started = time.perf_counter()
            result = await self._store.write_batch(plan.batch)
            metrics.STORE_WRITE_SECONDS.observe(time.perf_counter() - started)
            self._cache.add(plan.created_entity_ids)
            self._report(message, plan, result)
        return plan

    async def _fail_items(
        self, delivery: Delivery, kind: MessageKind, waited: bool, failed: list[_Failed]
    ) -> None:
        """Record each failing item ``failed`` in its job (when its origin is readable), then
        move the failing items to the dead-letter queue, one message per distinct reason (the
        delivery itself stays unsettled)."""
        known = [(item.meta, item.reason) for item in failed if item.meta is not None]
        if known:
            batch = failed_items_batch(kind, known, self._clock(), clears_waiting=waited)
            await self._store.write_batch(batch)
        by_reason: dict[str, list[_Failed]] = {}
        for item in failed:
            by_reason.setdefault(item.reason, []).append(item)
        for reason, items in by_reason.items():
            body = encode_envelope(kind, [item.encoded for item in items])
            await delivery.dead_letter_items(body, reason)
            code = reason.split(":", 1)[0]
            metrics.DEAD_LETTERS.labels(code).inc()
            metrics.ITEMS_PROCESSED.labels(kind.value, Outcome.FAILED.value, code).inc(len(items))
            log.warning(
                "items.dead_lettered",
                message_id=delivery.message_id,
                items=len(items),
                jobs=len({item.meta.job for item in items if item.meta is not None}),
                reason=reason,
            )

    async def _plan(self, message: Message, look: _Look | None = None) -> Plan:
        look = look or _Look()
        needed = needed_entity_ids(message)
        existing = needed
        unknown = self._cache.missing(needed)
        if unknown:
            found = await self._store.existing_entity_ids(unknown)
            self._cache.add(found)
            existing = (needed - unknown) | found
        settings = self._settings
        plan = plan_message(
            message,
            self._rules.rules,
            existing,
            self._clock(),
            settings.entity_wait,
            look.since,
            look.last_call,
        )
        unknown_type = RejectionCode.UNKNOWN_ASSOCIATION_TYPE
        if plan.rejections.get(unknown_type):
            # The type may have been added after the last refresh: reload once if the rules
            # are older than the newest item naming an unknown type, then decide again.
            codes = {preset.key: preset.code for preset in plan.batch.preset}
            newest = max(
                item.submitted_at
                for item in message.items
                if codes.get((item.job, item.index)) == unknown_type
            )
            if await self._rules.refresh_if_loaded_before(newest):
                plan = plan_message(
                    message,
                    self._rules.rules,
                    existing,
                    self._clock(),
                    settings.entity_wait,
                    look.since,
                    look.last_call,
                )
        return plan

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        await delivery.dead_letter(reason)
        metrics.DEAD_LETTERS.labels(reason.split(":", 1)[0]).inc()
        log.warning("message.dead_lettered", message_id=delivery.message_id, reason=reason)

    def _report(self, message: Message, plan: Plan, result: BatchResult) -> None:
        kind = message.kind.value
        skipped = result.skipped
        decided = result.outcomes
        if skipped:
            decided = {key: outcome for key, outcome in decided.items() if key not in skipped}
        # Counted by name: ``str`` of an ``Outcome`` is its value, and a plain string hashes
        # in C where an enum member hashes through Python (this runs once per item).
        outcomes: Counter[str] = Counter(map(str, decided.values()))
        rejected = Outcome.REJECTED.value
        # Rejected items by reason ("" when a rejection names none), for the counter and log.
        by_reason: Counter[str] = Counter()
        if outcomes[rejected]:
            codes = {preset.key: preset.code or "" for preset in plan.batch.preset}
            by_reason.update(codes.get(key, "") for key, o in decided.items() if o == rejected)
        # Items by submission time: a message's items share a few, so the end-to-end histogram
        # is updated once per distinct time, not once per item.
        times = {item.submitted_at for item in message.items}
        waited: Counter[float]
        if len(times) == 1 and message.kind != MessageKind.ENTITY:
            # Every outcome of an association message is one of its items'.
            waited = Counter({times.pop(): len(decided)} if decided else {})
        else:
            submitted = {(item.job, item.index): item.submitted_at for item in message.items}
            waited = Counter(at for key in decided if (at := submitted.get(key)) is not None)
        now = self._clock()
        for at, count in waited.items():
            metrics.observe_many(metrics.END_TO_END_SECONDS, max(0.0, now - at), count)
        # One counter update per (outcome, reason), not per item: labels() is a locked lookup.
        for outcome_name, count in outcomes.items():
            if outcome_name == rejected:
                for reason, n in by_reason.items():
                    metrics.ITEMS_PROCESSED.labels(kind, outcome_name, reason).inc(n)
            else:
                metrics.ITEMS_PROCESSED.labels(kind, outcome_name, "").inc(count)
        reasons = {reason: n for reason, n in by_reason.items() if reason}
        jobs = {item.job for item in message.items}
        summary = {
            "kind": kind,
            "jobs": len(jobs),
            "items": len(message.items),
            "pending": len(plan.pending),
            "skipped": len(result.skipped),
        }
        if len(jobs) == 1:
            summary["job_id"] = next(iter(jobs))
        written = sum(n for outcome, n in outcomes.items() if outcome != rejected)
        if written:
            log.info("job.stored", **summary, **dict(outcomes))
        if reasons:
            log.info("job.rejected", **summary, **reasons)


@dataclass(frozen=True, slots=True)
class _Failed:
    """A failing item: its origin (None when unreadable), its JSON, and why it failed."""

    meta: ItemMeta | None
    encoded: bytes
    reason: str


@dataclass(slots=True)
class _Handled:
    """What handling one message left to settle: items still waiting for an entity (with
    when each part first found them missing) and failing items with their reason."""

    pending: list[AssociationItem] = field(default_factory=list)
    waiting_since: list[float] = field(default_factory=list)
    wait_over: bool = False
    failed: list[_Failed] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Look:
    """Which look at its items a message is: ``since`` a worker first found their entities
    missing (None: the first look), and whether their wait is over (the last look)."""

    since: float | None = None
    last_call: bool = False


def _look_of(headers: Mapping[str, Any]) -> _Look:
    since = _waiting_since(headers)
    return _Look(since, since is not None and ENTITY_LAST_CALL_HEADER in headers)


def _recordable(salvaged: Salvaged) -> bool:
    """Whether some unreadable item can at least be recorded failed in its job."""
    return any(item.meta is not None for item in salvaged.unreadable)


def _kind_of(body: bytes) -> MessageKind:
    """The kind of a message whose envelope ``salvage_message`` found sound."""
    return MessageKind(orjson.loads(body)["kind"])


def _waiting_since(headers: Mapping[str, Any]) -> float | None:
    """When a worker first found this retried message's entities missing; None on a first
    look (or when the header does not hold a finite number of seconds)."""
    value = headers.get(ENTITY_WAIT_SINCE_HEADER)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        since = float(value) if isinstance(value, str | int | float) else math.nan
    except ValueError:
        return None
    return since if math.isfinite(since) and not isinstance(value, bool) else None


async def _give_back(delivery: Delivery) -> str:
    """Requeue a delivery that cannot be finished now; the ``MESSAGES_HANDLED`` result."""
    try:
        await delivery.requeue()
    except Exception as exc:
        log.warning("message.abandoned", message_id=delivery.message_id, error=repr(exc))
        return "abandoned"
    return "requeued"


async def _quietly(settle: Callable[[], Awaitable[None]]) -> None:
    """Settle on the way out; if the transport is gone the message is redelivered anyway."""
    with contextlib.suppress(Exception):
        await settle()
