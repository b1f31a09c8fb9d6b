"""Every Prometheus metric of the pipeline, defined once here.

Dashboards and alert rules in ``deploy/`` query these names; ``tests/deploy`` checks that every
name they use is defined in this module.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
E2E_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class _FoldTallies(Collector):
    """Registered before every metric below, so a scrape of the default registry folds the
    tallies (``CounterTally``, ``HistogramTally``) into their metrics before it reads them."""

    def __init__(self) -> None:
        self.tallies: list[CounterTally | HistogramTally] = []

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        fold_tallies()
        return ()


_FOLD = _FoldTallies()
REGISTRY.register(_FOLD)


def fold_tallies() -> None:
    """Add what every tally holds to its metric (a scrape of the default registry does this)."""
    for tally in _FOLD.tallies:
        tally.fold()


class CounterTally:
    """Increments of a labelled ``Counter`` kept in a plain dict, added to the counter at the
    next scrape (``fold``): a hot path pays a dict update instead of a locked increment.

    For one thread (the front's event loop); the values a scrape shows are the same.
    """

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._pending: dict[tuple[str, ...], float] = {}
        _FOLD.tallies.append(self)

    def inc(self, labels: tuple[str, ...], amount: float = 1) -> None:
        pending = self._pending
        pending[labels] = pending.get(labels, 0) + amount

    def fold(self) -> None:
        pending, self._pending = self._pending, {}
        for labels, amount in pending.items():
            self._counter.labels(*labels).inc(amount)


class HistogramTally:
    """Observations of a labelled ``Histogram`` kept as plain per-bucket counts and sums, added
    to the histogram at the next scrape (``fold``). Bounded memory: one list per label set.

    For one thread (the front's event loop); the values a scrape shows are the same as with
    ``observe``.
    """

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._bounds: list[float] = histogram._upper_bounds[:-1]  # its buckets but +Inf
        self._pending: dict[tuple[str, ...], list[float]] = {}
        _FOLD.tallies.append(self)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts = self._pending.get(labels)
        if counts is None:
            # One count per bound, one past the last (+Inf), then the sum.
            counts = self._pending[labels] = [0.0] * (len(self._bounds) + 2)
        counts[bisect_left(self._bounds, value)] += 1
        counts[-1] += value

    def fold(self) -> None:
        pending, self._pending = self._pending, {}
        for labels, counts in pending.items():
            child = self._histogram.labels(*labels)
            # prometheus_client has no bulk observe; these are the values ``observe`` updates.
            child._sum.inc(counts[-1])
            for bucket, count in zip(child._buckets, counts[:-1], strict=True):
                if count:
                    bucket.inc(count)


# front ---------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "ingest_http_requests_total", "HTTP requests answered, by route and status", ["route", "status"]
)
HTTP_REQUEST_SECONDS = Histogram(
    "ingest_http_request_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
ITEMS_ACKNOWLEDGED = Counter(
    "ingest_items_acknowledged_total", "Items answered with 202 (durably queued)", ["kind"]
)
HTTP_REQUESTS_TALLY = CounterTally(HTTP_REQUESTS)
"""``HTTP_REQUESTS`` for the front's per-request path: labels ``(route, status)``."""
HTTP_REQUEST_SECONDS_TALLY = HistogramTally(HTTP_REQUEST_SECONDS)
"""``HTTP_REQUEST_SECONDS`` for the front's per-request path: labels ``(route,)``."""
ITEMS_ACKNOWLEDGED_TALLY = CounterTally(ITEMS_ACKNOWLEDGED)
"""``ITEMS_ACKNOWLEDGED`` for the front's per-request path: labels ``(kind,)``."""
ITEMS_INVALID = Counter(
    "ingest_items_invalid_total", "Items refused by the front's synchronous checks", ["code"]
)
IDEMPOTENCY_KEYS = Counter(
    "ingest_idempotency_keys_total",
    "Writes whose Idempotency-Key was used before: replayed (not sent again), republished "
    "(sent again under the first job ID) or reused (another body, 422)",
    ["result"],
)
BACKPRESSURE_RESPONSES = Counter(
    "ingest_backpressure_responses_total",
    "503 answers because the broker could not confirm, or too many bodies were in flight",
)
HTTP_BODY_BYTES_IN_FLIGHT = Gauge(
    "ingest_http_body_bytes_in_flight", "Bytes of request bodies being handled now"
)

# publisher -----------------------------------------------------------------------------
PUBLISH_SECONDS = Histogram(
    "ingest_publish_seconds",
    "Time from publish to broker confirm, per message",
    buckets=LATENCY_BUCKETS,
)
ITEMS_PER_MESSAGE = Histogram(
    "ingest_items_per_message",
    "Items carried by one published message",
    ["kind"],
    buckets=BATCH_BUCKETS,
)
PUBLISH_FAILURES = Counter(
    "ingest_publish_failures_total", "Publishes that were not confirmed", ["reason"]
)

# workers -------------------------------------------------------------------------------
MESSAGES_HANDLED = Counter(
    "ingest_worker_messages_total", "Messages settled by workers, by how", ["result"]
)
ITEMS_PROCESSED = Counter(
    "ingest_worker_items_total",
    "Items that reached an outcome, by kind, outcome and reason",
    ["kind", "outcome", "reason"],
)
WORKER_BATCH_ITEMS = Histogram(
    "ingest_worker_batch_items", "Items handled together in one message", buckets=BATCH_BUCKETS
)
STORE_WRITE_SECONDS = Histogram(
    "ingest_store_write_seconds", "Time of one batch write to the store", buckets=LATENCY_BUCKETS
)
END_TO_END_SECONDS = Histogram(
    "ingest_end_to_end_seconds", "Time from submission to outcome written", buckets=E2E_BUCKETS
)
ITEM_RETRIES = Counter(
    "ingest_worker_item_retries_total", "Items sent back through a delay queue", ["reason"]
)
DEAD_LETTERS = Counter(
    "ingest_worker_dead_letters_total", "Messages moved to the dead-letter queue", ["reason"]
)
TRANSIENT_FAILURES = Counter(
    "ingest_worker_transient_failures_total", "Transient failures retried", ["dependency"]
)
WORKER_IN_FLIGHT = Gauge("ingest_worker_in_flight_messages", "Messages being handled now")
QUEUE_DEPTH = Gauge("ingest_queue_depth_messages", "Messages waiting in ingest.jobs")


def observe_many(histogram: Histogram, value: float, count: int) -> None:
    """``histogram.observe(value)`` ``count`` times, in one update of its sum and bucket.

    For a histogram without labels (or a labelled child). The worker observes the end-to-end
    time of every item of a message, and a message's items share a few submission times.
    """
    if count <= 0:
        return
    if count == 1:
        histogram.observe(value)
        return
    # prometheus_client has no bulk observe; these are the two values ``observe`` updates.
    histogram._sum.inc(value * count)
    for bucket, bound in zip(histogram._buckets, histogram._upper_bounds, strict=True):
        if value <= bound:
            bucket.inc(count)
            break
