"""``observe_many`` and the tallies: the same metrics as observing each value one at a time."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from workers.ground.metrics import CounterTally, HistogramTally, fold_tallies, observe_many

BUCKETS = (0.1, 1.0, 10.0)
OBSERVED = [(0.05, 3), (0.1, 1), (0.5, 7), (1.0, 2), (20.0, 4), (3.0, 0)]


def _histogram() -> tuple[Histogram, CollectorRegistry]:
    registry = CollectorRegistry()
    return Histogram("e2e_seconds", "test", buckets=BUCKETS, registry=registry), registry


def _samples(registry: CollectorRegistry) -> dict[str, float | None]:
    names = [("e2e_seconds_bucket", {"le": str(bound)}) for bound in (*BUCKETS, "+Inf")]
    samples: dict[str, float | None] = {
        f"le={labels['le']}": registry.get_sample_value(name, labels) for name, labels in names
    }
    samples["count"] = registry.get_sample_value("e2e_seconds_count")
    samples["sum"] = registry.get_sample_value("e2e_seconds_sum")
    return samples


def test_observe_many_counts_like_one_observe_per_item() -> None:
    one_by_one, expected = _histogram()
    in_bulk, actual = _histogram()
    for value, count in OBSERVED:
        for _ in range(count):
            one_by_one.observe(value)
        observe_many(in_bulk, value, count)
    want, got = _samples(expected), _samples(actual)
    assert got["sum"] == pytest.approx(want.pop("sum"))
    got.pop("sum")
    assert got == want
    assert got["count"] == sum(count for _, count in OBSERVED)


def test_histogram_tally_scrapes_like_one_observe_per_value() -> None:
    registry = CollectorRegistry()
    one_by_one = Histogram("direct_seconds", "test", ["route"], buckets=BUCKETS, registry=registry)
    tallied = Histogram("tallied_seconds", "test", ["route"], buckets=BUCKETS, registry=registry)
    tally = HistogramTally(tallied)
    for value, count in OBSERVED:
        for _ in range(count):
            one_by_one.labels("/a").observe(value)
            tally.observe(("/a",), value)
    fold_tallies()
    for suffix in ("_count", "_sum", *(f"_bucket/{b}" for b in (*BUCKETS, "+Inf"))):
        name, _, bound = suffix.partition("/")
        labels = {"route": "/a", **({"le": str(bound)} if bound else {})}
        want = registry.get_sample_value(f"direct_seconds{name}", labels)
        got = registry.get_sample_value(f"tallied_seconds{name}", labels)
        assert got == pytest.approx(want), suffix


def test_counter_tally_is_counted_by_the_next_scrape_of_the_default_registry() -> None:
    counter = Counter("tally_test_total", "test", ["route", "status"], registry=None)
    REGISTRY.register(counter)
    try:
        tally = CounterTally(counter)
        for _ in range(3):
            tally.inc(("/a", "202"))
        tally.inc(("/b", "404"), 2)
        text = generate_latest().decode()
        assert 'tally_test_total{route="/a",status="202"} 3.0' in text
        assert 'tally_test_total{route="/b",status="404"} 2.0' in text
        tally.inc(("/a", "202"))
        assert REGISTRY.get_sample_value("tally_test_total", {"route": "/a", "status": "202"}) == 4
    finally:
        REGISTRY.unregister(counter)
