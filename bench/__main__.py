"""``make bench``: every scenario, 5 runs each, in one run on this machine, every process at
the shipped defaults (a figure at other settings says which in its row).

Writes ``bench/results.json``, ``bench/results.md`` (the table the notes quote) and
``bench/chart.png``; with ``--only`` it prints the table and writes nothing. Figures are
medians of the runs; ratios compare against the raw-stack baselines measured in the same run
(``http``: bare aiohttp and the naive front, alternating with the fronts round by round,
``bench.side_by_side``; then the fixed-rate run of ``bench.half_rate`` on the same front). The
``*_mongodb`` scenario runs end to end on MongoDB: the server ``MONGODB_URL`` names, else a
SecantusDB server started for them (labelled so: a figure measured there says nothing of
mongod's speed).

    python -m bench [--runs 5] [--seconds 5] [--only front,bulk,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import e2e_bench, half_rate, http_bench, report, side_by_side, stix_bench
from bench.common import ROOT, amqp_url, median
from bench.compatible_mongo import LABEL, CompatibleMongo

OUT = ROOT / "bench"


def scenarios(runs: int, seconds: float) -> dict[str, Callable[[], Any]]:
    workloads: dict[str, e2e_bench.Workload] = {}

    def workload(name: str) -> e2e_bench.Workload:
        if name not in workloads:  # built once, shared by the scenarios that use it
            if name == "feeds_replayed":
                workloads[name] = e2e_bench.feeds_replayed_workload(200_000)
            elif name == "feeds":
                workloads[name] = e2e_bench.feeds_workload()
            else:
                workloads[name] = e2e_bench.enrichment_workload(per_cidr=50)
        return workloads[name]

    def e2e(workload_name: str, workers: int, mongodb: bool = False) -> Callable[[], Any]:
        def run() -> Any:
            chosen = workload(workload_name)
            with ExitStack() as stack:
                url, label = None, None
                if mongodb:
                    url = os.environ.get("MONGODB_URL")
                    label = "measured on the MongoDB server of MONGODB_URL"
                    if not url:
                        url, label = stack.enter_context(CompatibleMongo()).url, LABEL
                results = [
                    e2e_bench.run_e2e(chosen, workers, url) for _ in range(max(runs // 2, 1))
                ]
            return {
                "store": label or "embedded store",
                "workload": workload_name,
                "runs": results,
                "entities": results[0]["entities"],
                "associations": results[0]["associations"],
                "associations_per_s": median([r["associations_per_s"] for r in results]),
                "items_per_s": median([r["items_per_s"] for r in results]),
                "association_seconds": median([r["association_seconds"] for r in results]),
                "total_seconds": median([r["total_seconds"] for r in results]),
                "peak_rss_mb": results[-1]["peak_rss_mb"],
            }

        return run

    def http() -> Any:
        summary = side_by_side.alternate(
            side_by_side.KINDS,
            max(runs, 3),
            seconds,
            then=lambda targets, results: half_rate.run(
                targets["front"], results["front"]["rate"], runs=max(runs, 3), seconds=seconds
            ),
        )
        summary["half_rate"] = summary.pop("then")
        return summary

    def publisher() -> Any:
        from bench import publisher_bench

        results = [publisher_bench.run(amqp_url(), seconds=min(seconds, 3.0)) for _ in range(runs)]
        return {key: median([r[key] for r in results]) for key in results[0]}

    def store() -> Any:
        import tempfile

        from bench import store_bench

        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            results = [store_bench.run(Path(tmp) / str(i)) for i in range(runs)]
        return {key: median([r[key] for r in results]) for key in results[0]}

    def stix() -> Any:
        results = [stix_bench.run(bundles=20, workers=1) for _ in range(max(runs // 2, 1))]
        return {
            "runs": results,
            "objects_per_s_acknowledged": median(
                [r["objects_per_s_acknowledged"] for r in results]
            ),
            "items_per_s_stored": median([r["items_per_s_stored"] for r in results]),
            "peak_rss_mb": results[-1]["peak_rss_mb"],
        }

    return {
        # bare, naive, front, front_memory, front_p2 alternating; then the fixed-rate run
        "http": http,
        "bulk": lambda: http_bench.front_bulk(runs, seconds, 8),
        "front_keys": lambda: http_bench.front_keys(runs, seconds, 64),
        "publisher": publisher,
        "store": store,
        "e2e_feeds_replayed_1": e2e("feeds_replayed", 1),
        "e2e_feeds_replayed_2": e2e("feeds_replayed", 2),
        "e2e_enrichment_1": e2e("enrichment", 1),
        "e2e_enrichment_2": e2e("enrichment", 2),
        # One pass over the feeds only (about 6,400 associations): the replayed workload would
        # take most of an hour on SecantusDB.
        "e2e_feeds_2_mongodb": e2e("feeds", 2, mongodb=True),
        "stix": stix,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args()
    available = scenarios(args.runs, args.seconds)
    chosen = [name for name in args.only.split(",") if name] or list(available)
    # A partial run prints its table and keeps the committed results of the last full run.
    keep = not args.only
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": args.runs,
        "seconds": args.seconds,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenarios": {},
        "load_average": {"start": os.getloadavg()[0]},
    }
    for name in chosen:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        results["scenarios"][name] = available[name]()
        # The 1-minute load average when the scenario ends: how busy the shared machine was.
        results["load_average"][name] = os.getloadavg()[0]
        print(f"   {time.perf_counter() - started:.0f} s", flush=True)
        if keep:
            (OUT / "results.json").write_text(json.dumps(results, indent=2))
    table = report.markdown(results)
    if keep:
        (OUT / "results.md").write_text(table)
        report.chart(results, OUT / "chart.png")
    print(table)


if __name__ == "__main__":
    main()
