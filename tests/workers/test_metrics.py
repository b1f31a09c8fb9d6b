"""``observe_many``: the same histogram as observing each value one at a time."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from workers.ground.metrics import observe_many

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
