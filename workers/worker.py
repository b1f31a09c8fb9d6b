"""The worker loop: receive messages, decide them with ``workers.planning``, write, settle.

Per message: decode (undecodable -> dead-letter queue), one ``existing_entity_ids`` read for
the IDs not in the entity cache, rule matching in memory, one ``write_batch``, then one
settlement: ``ack``, or ``retry_later`` with the items still waiting for an entity (only after
the write, and the transport acks the original only once the retry is confirmed). Nothing is
acked before its write, and a crash at any point leaves the message to be redelivered, which
the store's idempotent writes make harmless.

Transient failures retry the whole message in process with exponential backoff (capped at
5 s): a store outage without limit while the worker runs. A broker failure is retried a few
times, then the message is requeued: a delivery whose channel died can never be settled, and
the broker redelivers it on the new channel anyway. On shutdown the message is requeued. Any
other exception dead-letters the message (``handler_error: ...``) rather than lose or spin it.

While it runs, a worker also removes expired jobs and their outcomes from the store at start and
every ``PURGE_INTERVAL`` seconds (``Store.purge_expired_jobs``): the embedded store has no TTL
index doing it, and on MongoDB it removes what the TTL monitor has not reached yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from schemas import RejectionCode
from schemas.messages import MessageKind, decode_message, encode_envelope, encode_item
from workers.entity_cache import EntityCache
from workers.ground import metrics
from workers.ground.errors import BrokerUnavailable, TransientError
from workers.ground.logs import get_logger
from workers.ground.settings import Settings
from workers.planning import Message, Plan, needed_entity_ids, plan_message, retry_delay
from workers.queue.base import ConsumerHandle, Delivery, JobQueue
from workers.rules_cache import RulesCache
from workers.store.base import Store
from workers.store.logic import jobs_visible_since
from workers.store.records import BatchResult, Outcome

log = get_logger(__name__)

MAX_BACKOFF = 5.0
FIRST_BACKOFF = 0.1
MAX_BROKER_ATTEMPTS = 4
PURGE_INTERVAL = 3600.0


class Worker:
    """Consumes ``queue.topology.work_queue`` and writes outcomes to ``store``.

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
        self._clock = clock
        self._cache = EntityCache(settings.entity_cache_size)
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._stopping = asyncio.Event()
        self._consumer: ConsumerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: dict[asyncio.Task[None], Delivery] = {}
        self._purger: asyncio.Task[None] | None = None

    @property
    def entity_cache(self) -> EntityCache:
        return self._cache

    async def start(self) -> None:
        if self._owns_rules:
            await self._rules.start()
        self._consumer = await self._queue.consume(
            self._on_delivery, prefetch=self._settings.worker_prefetch
        )
        self._purger = asyncio.create_task(self._purge_expired_jobs())
        log.info(
            "worker.started",
            queue=self._queue.topology.work_queue,
            prefetch=self._settings.worker_prefetch,
            concurrency=self._settings.worker_concurrency,
        )

    async def stop(self, timeout: float) -> None:
        self._stopping.set()
        purger, self._purger = self._purger, None
        if purger is not None:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
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

    async def _purge_expired_jobs(self) -> None:
        while not self._stopping.is_set():
            not_before = jobs_visible_since(self._clock(), self._settings.job_ttl)
            try:
                removed = await self._store.purge_expired_jobs(not_before)
            except TransientError as exc:
                log.warning("jobs.purge_failed", error=str(exc))
            else:
                if removed:
                    log.info("jobs.purged", jobs=removed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), PURGE_INTERVAL)

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
        try:
            message = decode_message(delivery.body)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(delivery, _undecodable_reason(exc))
            return "dead_lettered"
        metrics.WORKER_BATCH_ITEMS.observe(len(message.items))
        plan = await self._plan(message)
        if plan.writes_anything:
            started = time.perf_counter()
            result = await self._store.write_batch(plan.batch)
            metrics.STORE_WRITE_SECONDS.observe(time.perf_counter() - started)
            self._cache.add(plan.created_entity_ids)
            self._report(message, plan, result)
        if not plan.pending:
            await delivery.ack()
            return "acked"
        kind = MessageKind(message.kind)
        body = (
            None
            if len(plan.pending) == len(message.items)
            else encode_envelope(kind, [encode_item(item) for item in plan.pending])
        )
        delay = retry_delay(
            plan.pending,
            self._clock(),
            self._settings.entity_wait,
            self._queue.topology.retry_tiers[0],
        )
        await delivery.retry_later(delay, body)
        metrics.ITEM_RETRIES.labels("entity_not_found").inc(len(plan.pending))
        log.debug("items.waiting", items=len(plan.pending), delay=delay)
        return "retried"

    async def _plan(self, message: Message) -> Plan:
        needed = needed_entity_ids(message)
        existing = needed
        unknown = self._cache.missing(needed)
        if unknown:
            found = await self._store.existing_entity_ids(unknown)
            self._cache.add(found)
            existing = (needed - unknown) | found
        settings = self._settings
        plan = plan_message(
            message, self._rules.rules, existing, self._clock(), settings.entity_wait
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
                    message, self._rules.rules, existing, self._clock(), settings.entity_wait
                )
        return plan

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        await delivery.dead_letter(reason)
        metrics.DEAD_LETTERS.labels(reason.split(":", 1)[0]).inc()
        log.warning("message.dead_lettered", message_id=delivery.message_id, reason=reason)

    def _report(self, message: Message, plan: Plan, result: BatchResult) -> None:
        kind = message.kind.value
        submitted = {(item.job, item.index): item.submitted_at for item in message.items}
        codes = {preset.key: preset.code or "" for preset in plan.batch.preset}
        now = self._clock()
        labelled: Counter[tuple[str, str]] = Counter()
        for key, outcome in result.outcomes.items():
            if key in result.skipped:
                continue
            reason = codes.get(key, "") if outcome == Outcome.REJECTED else ""
            labelled[(outcome.value, reason)] += 1
            if key in submitted:
                metrics.END_TO_END_SECONDS.observe(max(0.0, now - submitted[key]))
        # One counter update per (outcome, reason), not per item: labels() is a locked lookup.
        outcomes: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for (outcome_name, reason), count in labelled.items():
            metrics.ITEMS_PROCESSED.labels(kind, outcome_name, reason).inc(count)
            outcomes[outcome_name] += count
            if reason:
                reasons[reason] += count
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
        written = sum(n for outcome, n in outcomes.items() if outcome != Outcome.REJECTED)
        if written:
            log.info("job.stored", **summary, **dict(outcomes))
        if reasons:
            log.info("job.rejected", **summary, **dict(reasons))


def _undecodable_reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.error_count() else {"msg": str(exc), "loc": ()}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        return f"undecodable: {detail}"[:500]
    return f"undecodable: {exc}"[:500]


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
