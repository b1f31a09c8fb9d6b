"""Turns ``results.json`` into the markdown table and the PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results["scenarios"]
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    bare = _get(results, "bare", "rate")
    naive = _get(results, "naive", "rate")
    front = _get(results, "front", "max", "rate")
    rows = [
        "| scenario | throughput (median) | p50 ms | p99 ms | p99.9 ms | peak RSS MB | ratio |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(name: str, rate: Any, unit: str, lat: Any, rss: Any, ratio: str = "") -> None:
        lat = lat or {}
        rows.append(
            f"| {name} | {_fmt(rate)} {unit} | {_fmt(lat.get('p50_ms'), 2)} | "
            f"{_fmt(lat.get('p99_ms'), 2)} | {_fmt(lat.get('p999_ms'), 2)} | "
            f"{_fmt(rss, 0)} | {ratio} |"
        )

    if bare is not None:
        row(
            "bare aiohttp 202 (ceiling)",
            bare,
            "req/s",
            _get(results, "bare"),
            _get(results, "bare", "peak_rss_mb"),
            "1.00 of bare",
        )
    if naive is not None:
        row(
            "naive: one publish+confirm per request",
            naive,
            "req/s",
            _get(results, "naive"),
            _get(results, "naive", "peak_rss_mb"),
            f"{naive / bare:.2f} of bare" if bare else "",
        )
    if front is not None:
        ratios = []
        if bare:
            ratios.append(f"{front / bare:.2f} of bare")
        if naive:
            ratios.append(f"{front / naive:.1f}x naive")
        row(
            "front POST /association, c=64",
            front,
            "req/s",
            _get(results, "front", "max"),
            _get(results, "front", "peak_rss_mb"),
            ", ".join(ratios),
        )
        half = _get(results, "front", "half_rate")
        row(
            f"front at half rate ({_fmt(half.get('target_rate'))} req/s)",
            half.get("rate"),
            "req/s",
            half,
            None,
        )
    keys = _get(results, "front_keys")
    if keys:
        for label, node in (("without", "without_keys"), ("with", "with_keys")):
            row(
                f"front POST /association {label} Idempotency-Key, c=64",
                keys[node]["rate"],
                "req/s",
                keys[node],
                keys.get("peak_rss_mb") if label == "with" else None,
                f"{keys['cost_us']:+.0f} µs a request" if label == "with" else "",
            )
    bulk = _get(results, "bulk")
    if bulk:
        row(
            "front POST /associations, 1,000 items",
            bulk.get("items_rate"),
            "items/s",
            bulk,
            bulk.get("peak_rss_mb"),
        )
    for name in (
        "e2e_feeds_1",
        "e2e_feeds_2",
        "e2e_feeds_2_mongodb",
        "e2e_enrichment_1",
        "e2e_enrichment_2",
    ):
        e2e = _get(results, name)
        if e2e:
            rss = e2e.get("peak_rss_mb", {})
            mongodb = name.endswith("_mongodb")
            where = f" on MongoDB ({e2e.get('store')})" if mongodb else ""
            row(
                f"end to end {name[4:].removesuffix('_mongodb')} worker(s){where}",
                e2e.get("associations_per_s"),
                "assoc/s stored",
                None,
                f"front {rss.get('front', 0):.0f} / worker {rss.get('worker', 0):.0f}",
            )
    stix = _get(results, "stix")
    if stix:
        rss = stix.get("peak_rss_mb", {})
        row(
            "POST /stix, FireEye bundle replayed (front only)",
            stix.get("objects_per_s_acknowledged"),
            "STIX objects/s acknowledged",
            None,
            f"front {rss.get('front', 0):.0f}",
        )
        assoc = _get(results, "e2e_enrichment_1", "associations_per_s")
        stored = stix.get("items_per_s_stored")
        row(
            "STIX end to end, 1 worker",
            stored,
            "items/s stored",
            None,
            f"worker {rss.get('worker', 0):.0f}",
            f"{assoc / stored:.1f}x the time per item of enrichment_1" if assoc and stored else "",
        )
    publisher = _get(results, "publisher")
    store = _get(results, "store")
    extra = []
    if publisher:
        extra.append(
            "publisher (messages or items confirmed per second): "
            + ", ".join(f"{k} {_fmt(v, 1)}" for k, v in publisher.items())
        )
    if store:
        extra.append("store: " + ", ".join(f"{k} {_fmt(v, 1)}" for k, v in store.items()))
    return "\n".join(rows) + "\n\n" + "\n\n".join(extra) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, rates, p99 = [], [], []
    for label, keys in (
        ("bare", ("bare",)),
        ("naive", ("naive",)),
        ("front", ("front", "max")),
        ("front ½ rate", ("front", "half_rate")),
    ):
        node = _get(results, *keys)
        if node:
            names.append(label)
            rates.append(node["rate"])
            p99.append(node["p99_ms"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(names, rates, color="#4C72B0")
    left.set_title("POST /association, requests/s (median)")
    right.bar(names, p99, color="#DD8452")
    right.set_title("p99 latency, ms (median)")
    for axis in (left, right):
        axis.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
