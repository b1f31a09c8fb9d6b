"""Turns ``results.json`` into the markdown table and the PNG chart.

Every row carries its ratio to the raw-stack baselines of the same run: ``bare`` (an aiohttp
handler answering 202, the HTTP ceiling), ``naive`` (one publish and confirm per request: one
item a request, so items/s rows are compared with it too) and, for rows that store, the raw
SQL baseline of ``store`` (one ``executemany`` upsert per batch). The last column says what
issue 13 asks of the row and whether this run meets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BULK_TARGET = 200_000.0
E2E_TARGET = 50_000.0


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
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _ratio(value: Any, base: Any) -> str:
    if not value or not base:
        return "—"
    return f"{value / base:.2f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


class _Table:
    def __init__(self, bare: Any, naive: Any, raw_sql: Any) -> None:
        self.bare, self.naive, self.raw_sql = bare, naive, raw_sql
        self.rows = [
            "| scenario | throughput (median) | p50 ms | p99 ms | p99.9 ms | peak RSS MB | "
            "x bare | x naive | x raw SQL | issue 13 target |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]

    def row(
        self,
        name: str,
        rate: Any,
        unit: str,
        lat: Any = None,
        rss: Any = None,
        *,
        stores: bool = False,
        target: str = "",
    ) -> None:
        lat = lat or {}
        rss_text = _fmt(rss) if not isinstance(rss, str) else rss
        self.rows.append(
            f"| {name} | {_fmt(rate)} {unit} | {_fmt(lat.get('p50_ms'), 2)} | "
            f"{_fmt(lat.get('p99_ms'), 2)} | {_fmt(lat.get('p999_ms'), 2)} | {rss_text} | "
            f"{_ratio(rate, self.bare)} | {_ratio(rate, self.naive)} | "
            f"{_ratio(rate, self.raw_sql) if stores else '—'} | {target} |"
        )


def _http_rows(table: _Table, http: dict[str, Any]) -> None:
    kinds = http.get("kinds", {})
    ratios = http.get("ratios", {})
    labels = {
        "bare": "bare aiohttp 202 (raw-stack ceiling)",
        "naive": "naive front: one publish+confirm per request (raw-stack baseline)",
        "front": "front POST /association (`api`, 1 process), RabbitMQ",
        "front_memory": "front POST /association, in-process queue",
        "front_p2": "front POST /association, `api --processes 2`, RabbitMQ",
    }
    targets = {"front": "front/naive", "front_memory": "front_memory/bare"}
    for kind, node in kinds.items():
        target = ""
        ratio = ratios.get(targets.get(kind, ""))
        if ratio and ratio.get("target") is not None:
            target = f"{targets[kind]} ≥ {ratio['target']:g}: {ratio['value']:.2f}, "
            target += _met(ratio["met"])
        if kind == "front_p2" and "front_p2/front" in ratios:
            target = f"{ratios['front_p2/front']['value']:.2f} x 1 process"
        table.row(
            f"{labels.get(kind, kind)}, wrk c={http['connections']}",
            node["rate"],
            "req/s",
            node,
            node.get("peak_rss_mb"),
            target=target,
        )
    half = http.get("half_rate")
    if half:
        errors = ", ".join(f"{e * 100:.1f} %" for e in half["rate_errors"])
        table.row(
            f"front at half its maximum: {_fmt(half['target_rate'])} req/s due, "
            f"paced (latency from the due time), c={half['connections']}",
            half["rate"],
            "req/s achieved",
            half,
            target=f"rate within 5 % ({errors}): {_met(half['within_tolerance'])}; "
            f"p99 < 25 ms: {_met(half['p99_target_met'])}",
        )


def markdown(results: dict[str, Any]) -> str:
    bare = _get(results, "http", "kinds", "bare", "rate")
    naive = _get(results, "http", "kinds", "naive", "rate")
    raw_sql = _get(results, "store", "baseline_rows_per_s")
    table = _Table(bare, naive, raw_sql)
    http = _get(results, "http")
    if http:
        _http_rows(table, http)
    keys = _get(results, "front_keys")
    if keys:
        for label, node in (("without", "without_keys"), ("with", "with_keys")):
            table.row(
                f"front POST /association {label} an Idempotency-Key, c=64 (alternating)",
                keys[node]["rate"],
                "req/s",
                keys[node],
                keys.get("peak_rss_mb") if label == "with" else None,
                target=f"key costs {keys['cost_us']:+.0f} µs CPU a request"
                if label == "with"
                else "",
            )
    bulk = _get(results, "bulk")
    if bulk:
        table.row(
            "front POST /associations, 1,000 items a request, wrk c=8",
            bulk.get("items_rate"),
            "items/s acknowledged",
            bulk,
            bulk.get("peak_rss_mb"),
            target=f"≥ 200,000 items/s: {_met((bulk.get('items_rate') or 0) >= BULK_TARGET)}",
        )
    for name, label in (
        ("e2e_feeds_replayed_1", "end to end, feeds replayed, 1 worker"),
        ("e2e_feeds_replayed_2", "end to end, feeds replayed, 2 workers"),
        ("e2e_enrichment_1", "end to end, enrichment, 1 worker"),
        ("e2e_enrichment_2", "end to end, enrichment, 2 workers"),
        ("e2e_feeds_2_mongodb", "end to end, the feeds once (smaller workload), 2 workers"),
    ):
        e2e = _get(results, name)
        if not e2e:
            continue
        rss = e2e.get("peak_rss_mb", {})
        where = f" on MongoDB ({e2e.get('store')})" if name.endswith("_mongodb") else ""
        size = (
            f"{_fmt(e2e.get('associations'))} assoc. after {_fmt(e2e.get('entities'))} entities; "
            f"{_fmt(e2e.get('total_seconds'), 1)} s first submission to all stored"
            if e2e.get("total_seconds") is not None
            else ""
        )
        target = ""
        if name == "e2e_feeds_replayed_2":
            ok = (e2e.get("associations_per_s") or 0) >= E2E_TARGET
            target = f"≥ 50,000 assoc/s stored, 2 workers: {_met(ok)}"
        table.row(
            f"{label}{where} ({size})" if size else f"{label}{where}",
            e2e.get("associations_per_s"),
            "assoc/s stored",
            None,
            f"front {rss.get('front', 0):.0f} / worker {rss.get('worker', 0):.0f}",
            stores=True,
            target=target,
        )
    stix = _get(results, "stix")
    if stix:
        rss = stix.get("peak_rss_mb", {})
        table.row(
            "POST /stix, FireEye bundle replayed (front only)",
            stix.get("objects_per_s_acknowledged"),
            "STIX objects/s acknowledged",
            None,
            f"front {rss.get('front', 0):.0f}",
        )
        table.row(
            "STIX end to end, 1 worker",
            stix.get("items_per_s_stored"),
            "items/s stored",
            None,
            f"worker {rss.get('worker', 0):.0f}",
            stores=True,
        )
    publisher = _get(results, "publisher")
    if publisher:
        table.row(
            "publisher alone, one message and confirm at a time",
            publisher.get("plain_items_per_s"),
            "items/s confirmed",
        )
        table.row(
            "publisher alone, coalescing",
            publisher.get("coalesced_items_per_s"),
            "items/s confirmed",
            target=f"{_fmt(publisher.get('ratio'), 1)} x one at a time",
        )
    store = _get(results, "store")
    if store:
        for key, label in (
            ("store_new_rows_per_s", "store alone, new associations"),
            ("store_new_rows_per_s_4_tasks", "store alone, new associations, 4 tasks"),
            ("store_duplicate_rows_per_s", "store alone, duplicates"),
            ("baseline_rows_per_s", "raw SQL executemany upsert (raw-stack baseline)"),
        ):
            table.row(label, store.get(key), "rows/s", stores=True)
    notes = [
        "Every process at the shipped defaults (log level INFO, log format auto: JSON to a "
        "file, durable commits of the embedded store, default concurrency and prefetch); "
        "benchmarks set only their own port, queue names, data directory and API key. "
        "Ratios divide by the baselines of this run: x bare and x naive by their req/s (one "
        "item a request), x raw SQL by the raw upsert rate of `store`.",
    ]
    notes.append(
        f"`python -m bench --runs {results.get('runs')} --seconds {results.get('seconds')}`, "
        f"started {results.get('started')}, {results.get('machine', {}).get('cpus')} CPUs "
        "(the load average below says what else ran): compare rows of one run only."
    )
    loads = results.get("load_average")
    if loads:
        notes.append(
            "1-minute load average (start, then at the end of each scenario): "
            + ", ".join(f"{name} {value:.1f}" for name, value in loads.items())
        )
    if http:
        notes.append(
            f"HTTP rows: the servers up at once, {http['rounds']} rounds of "
            f"{http['seconds']:g} s alternating in the order {', '.join(http['order'])}, "
            "one wrk (1 thread) as the load generator, the same RabbitMQ; medians."
        )
    return "\n".join(table.rows) + "\n\n" + "\n\n".join(notes) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, rates, p99 = [], [], []
    for label, keys in (
        ("bare", ("http", "kinds", "bare")),
        ("naive", ("http", "kinds", "naive")),
        ("front", ("http", "kinds", "front")),
        ("front memory", ("http", "kinds", "front_memory")),
        ("front x2", ("http", "kinds", "front_p2")),
        ("front ½ rate", ("http", "half_rate")),
    ):
        node = _get(results, *keys)
        if node:
            names.append(label)
            rates.append(node["rate"])
            p99.append(node["p99_ms"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    left.bar(names, rates, color="#4C72B0")
    left.set_title("POST /association, requests/s (median)")
    right.bar(names, p99, color="#DD8452")
    right.set_title("p99 latency, ms (median)")
    for axis in (left, right):
        axis.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
