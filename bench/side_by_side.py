"""``POST /association`` side by side: servers up at once, one load generator (wrk, c=64), runs
alternating round by round, medians.

Kinds (every one at the shipped defaults; the same RabbitMQ for all that use it):

- ``bare``: an aiohttp handler that parses the body and answers 202, no broker (the HTTP
  ceiling, ``bench.baseline_servers``);
- ``naive``: the same handler with one publish and its confirm per request;
- ``front``: ``assoc-ingest api`` (one process) on RabbitMQ;
- ``front_memory``: the same front on the in-process queue (``bench.memory_front``);
- ``front_p2``: ``assoc-ingest api --processes 2`` on RabbitMQ.

Ratios: ``front/naive`` (issue 13's target: at least 3), ``front_memory/bare`` (at least 0.5),
``front_p2/front``. With ``--kinds front,naive`` (the default here) this is the held-out check
of the issue: the project's front against a naive front, in the same sitting.

    python -m bench.side_by_side [--kinds front,naive] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from bench.common import PeakRss
from bench.http_bench import (
    PATH_SINGLE,
    association_bodies,
    baseline_server,
    front_server,
    summarise,
)
from bench.wrk import WrkResult, run_wrk

KINDS = ("bare", "naive", "front", "front_memory", "front_p2")
CONNECTIONS = 64
RATIOS = (
    ("front", "naive", 3.0),
    ("front_memory", "bare", 0.5),
    ("front_p2", "front", None),
    ("front", "bare", None),
    ("naive", "bare", None),
)
"""(numerator, denominator, the issue's target or None)."""

Target = tuple[str, dict[str, str], PeakRss]


@contextmanager
def server(kind: str) -> Iterator[Target]:
    """The server of ``kind`` (see the module docstring): its URL, headers and memory watch."""
    if kind in ("bare", "naive"):
        with baseline_server(kind) as (url, rss):
            yield url, {"Content-Type": "application/json"}, rss
    elif kind == "front":
        with front_server() as target:
            yield target
    elif kind == "front_memory":
        with front_server(memory=True) as target:
            yield target
    elif kind == "front_p2":
        with front_server(processes=2) as target:
            yield target
    else:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")


def peak_rss(rss: PeakRss) -> float:
    return max(rss.peaks.values(), default=0.0)


def ratios(rates: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each ratio of ``RATIOS`` whose two kinds ran, with its target and whether it is met."""
    found: dict[str, dict[str, Any]] = {}
    for top, bottom, target in RATIOS:
        if top in rates and bottom in rates and rates[bottom] > 0:
            value = rates[top] / rates[bottom]
            found[f"{top}/{bottom}"] = {
                "value": value,
                "target": target,
                "met": None if target is None else value >= target,
            }
    return found


def alternate(
    kinds: Sequence[str],
    rounds: int,
    seconds: float,
    *,
    then: Any = None,
) -> dict[str, Any]:
    """Every kind up at once, a 1 s warm-up each, then ``rounds`` rounds of one wrk run per kind
    in the order given. ``then(targets, results)``, when given, runs before the servers stop
    (the fixed-rate run uses the front of the same sitting) and its answer is kept as
    ``then``."""
    bodies = association_bodies(20_000)
    runs: dict[str, list[WrkResult]] = {kind: [] for kind in kinds}
    with ExitStack() as stack:
        targets = {kind: stack.enter_context(server(kind)) for kind in kinds}
        for url, headers, _ in targets.values():
            run_wrk(url, PATH_SINGLE, bodies[:2000], headers, seconds=1, connections=CONNECTIONS)
        for round_number in range(rounds):
            for kind in kinds:
                url, headers, _ = targets[kind]
                result = run_wrk(
                    url, PATH_SINGLE, bodies, headers, seconds=seconds, connections=CONNECTIONS
                )
                runs[kind].append(result)
                print(f"   round {round_number + 1} {kind}: {result.rate:,.0f} req/s", flush=True)
        results: dict[str, Any] = {
            kind: {**summarise(runs[kind]), "peak_rss_mb": peak_rss(targets[kind][2])}
            for kind in kinds
        }
        extra = then(targets, results) if then is not None else None
    summary: dict[str, Any] = {
        "connections": CONNECTIONS,
        "rounds": rounds,
        "seconds": seconds,
        "order": list(kinds),
        "kinds": results,
        "ratios": ratios({kind: results[kind]["rate"] for kind in kinds}),
    }
    if extra is not None:
        summary["then"] = extra
    return summary


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"POST /association, wrk c={summary['connections']}, {summary['rounds']} rounds of "
        f"{summary['seconds']:g} s alternating ({', '.join(summary['order'])}), medians",
        "",
        "| kind | req/s (median) | runs | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for kind, node in summary["kinds"].items():
        runs = ", ".join(f"{rate:,.0f}" for rate in node["runs"])
        lines.append(
            f"| {kind} | {node['rate']:,.0f} | {runs} | {node['p50_ms']:.2f} | "
            f"{node['p99_ms']:.2f} | {node['errors']} |"
        )
    lines.append("")
    for name, ratio in summary["ratios"].items():
        target = ratio["target"]
        verdict = "" if target is None else f" (target >= {target:g}: {_met(ratio['met'])})"
        lines.append(f"{name}: {ratio['value']:.2f}{verdict}")
    return "\n".join(lines)


def _met(met: bool | None) -> str:
    return "met" if met else "NOT met"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__)
    parser.add_argument("--kinds", default="front,naive", help=f"any of {','.join(KINDS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON too")
    args = parser.parse_args(argv)
    kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    summary = alternate(kinds, args.rounds, args.seconds)
    print(render(summary))
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
