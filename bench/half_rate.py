"""The front at a fixed rate of half its measured maximum: ``bench.paced`` (requests due on a
fixed schedule, latency from the due time, no coordinated omission), runs of ``seconds`` each
on the front of the same sitting, medians.

Each run reports its achieved rate against the target (issue 13: within 5 %) and p50, p99 and
p99.9 from the due time (issue 13: p99 under 25 ms).
"""

from __future__ import annotations

from typing import Any

from bench.common import PeakRss, median
from bench.http_bench import PATH_SINGLE, association_bodies
from bench.paced import PacedResult, paced

CONNECTIONS = 64
RATE_TOLERANCE = 0.05
P99_TARGET_MS = 25.0


def run(
    target: tuple[str, dict[str, str], PeakRss], max_rate: float, *, runs: int, seconds: float
) -> dict[str, Any]:
    """``runs`` paced runs at ``max_rate / 2`` against ``target`` (url, headers, watch)."""
    url, headers, _ = target
    rate = max_rate / 2
    bodies = association_bodies(20_000)
    paced(url, PATH_SINGLE, bodies[:2000], headers, rate=rate, seconds=1, connections=CONNECTIONS)
    results = [
        paced(
            url, PATH_SINGLE, bodies, headers, rate=rate, seconds=seconds, connections=CONNECTIONS
        )
        for _ in range(runs)
    ]
    return summarise(results, rate)


def summarise(results: list[PacedResult], rate: float) -> dict[str, Any]:
    p99 = median([r.p99_ms for r in results])
    worst_error = max(r.rate_error for r in results)
    return {
        "generator": "bench.paced (fixed schedule, latency from the due time)",
        "connections": CONNECTIONS,
        "target_rate": rate,
        "runs": [r.rate for r in results],
        "rate": median([r.rate for r in results]),
        "rate_errors": [r.rate_error for r in results],
        "within_tolerance": worst_error <= RATE_TOLERANCE,
        "p50_ms": median([r.p50_ms for r in results]),
        "p99_ms": p99,
        "p999_ms": median([r.p999_ms for r in results]),
        "max_ms": max(r.max_ms for r in results),
        "p99_target_met": p99 < P99_TARGET_MS,
        "errors": sum(r.errors for r in results),
    }
