"""``make bench``: every scenario, 5 runs each, in one run on this machine.

Writes ``bench/results.json``, ``bench/results.md`` (the table the notes quote) and
``bench/chart.png``. Figures are medians of the runs; ratios compare against the raw-stack
ceilings measured in the same run. The ``*_mongodb`` scenario runs end to end on MongoDB: the
server ``MONGODB_URL`` names, else a SecantusDB server started for them (labelled so: a figure
measured there says nothing of mongod's speed).

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

from bench import e2e_bench, http_bench, report, stix_bench
from bench.common import ROOT, amqp_url, median
from bench.compatible_mongo import LABEL, CompatibleMongo

OUT = ROOT / "bench"


def scenarios(runs: int, seconds: float) -> dict[str, Callable[[], Any]]:
    def e2e(workload_name: str, workers: int, mongodb: bool = False) -> Callable[[], Any]:
        def run() -> Any:
            workload = (
                e2e_bench.feeds_workload()
                if workload_name == "feeds"
                else e2e_bench.enrichment_workload(per_cidr=50)
            )
            with ExitStack() as stack:
                url, label = None, None
                if mongodb:
                    url = os.environ.get("MONGODB_URL")
                    label = "measured on the MongoDB server of MONGODB_URL"
                    if not url:
                        url, label = stack.enter_context(CompatibleMongo()).url, LABEL
                results = [
                    e2e_bench.run_e2e(workload, workers, url) for _ in range(max(runs // 2, 1))
                ]
            return {
                "store": label or "embedded store",
                "runs": results,
                "associations_per_s": median([r["associations_per_s"] for r in results]),
                "items_per_s": median([r["items_per_s"] for r in results]),
                "association_seconds": median([r["association_seconds"] for r in results]),
                "peak_rss_mb": results[-1]["peak_rss_mb"],
            }

        return run

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
        "bare": lambda: http_bench.ceiling("bare", runs, seconds, 64),
        "naive": lambda: http_bench.ceiling("naive", runs, seconds, 64),
        "front": lambda: http_bench.front_single(runs, seconds, 64),
        "bulk": lambda: http_bench.front_bulk(runs, seconds, 8),
        "front_keys": lambda: http_bench.front_keys(runs, seconds, 64),
        "publisher": publisher,
        "store": store,
        "e2e_feeds_1": e2e("feeds", 1),
        "e2e_feeds_2": e2e("feeds", 2),
        "e2e_enrichment_1": e2e("enrichment", 1),
        "e2e_enrichment_2": e2e("enrichment", 2),
        # The feeds workload only: the enrichment one would take hours on SecantusDB.
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
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "runs": args.runs,
        "seconds": args.seconds,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenarios": {},
    }
    for name in chosen:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        results["scenarios"][name] = available[name]()
        print(f"   {time.perf_counter() - started:.0f} s", flush=True)
        (OUT / "results.json").write_text(json.dumps(results, indent=2))
    table = report.markdown(results)
    (OUT / "results.md").write_text(table)
    report.chart(results, OUT / "chart.png")
    print(table)


if __name__ == "__main__":
    main()
