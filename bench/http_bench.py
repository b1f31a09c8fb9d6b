"""HTTP scenarios driven by wrk, and the servers they run against.

- ``baseline_server``: bare aiohttp or the naive front (``bench.baseline_servers``);
- ``front_server``: ``assoc-ingest api [--processes N]`` on RabbitMQ, or the front on the
  in-process queue; ``bench.side_by_side`` runs them alternating, ``bench.half_rate`` at a
  fixed rate;
- ``bulk``: ``POST /associations`` with 1,000 items per request;
- ``front_keys``: ``POST /association`` without and with an ``Idempotency-Key`` on every
  request, runs alternating on one front, and what a key costs per request.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    CLI,
    PeakRss,
    amqp_url,
    create_key,
    delete_topology,
    free_port,
    median,
    pipeline_env,
    process,
    unique,
)
from bench.wrk import WrkResult, run_wrk

KEY_HEADER = "Idempotency-Key"
PATH_SINGLE = "/api/ingest/v1/association"
PATH_BULK = "/api/ingest/v1/associations"


def random_hex() -> str:
    return os.urandom(32).hex()


def association_bodies(count: int) -> list[bytes]:
    """ASN -> Address bodies with random (well-formed) IDs: the front checks shape and kinds."""
    return [
        orjson.dumps({"entityID": f"asn-{random_hex()}", "relatedEntityID": f"ip-{random_hex()}"})
        for _ in range(count)
    ]


def bulk_bodies(requests: int, items: int) -> list[bytes]:
    """JSON-array bulk bodies (one line each, as wrk's body file needs)."""
    return [b"[" + b",".join(association_bodies(items)) + b"]" for _ in range(requests)]


def summarise(results: list[WrkResult]) -> dict[str, Any]:
    return {
        "runs": [r.rate for r in results],
        "rate": median([r.rate for r in results]),
        "p50_ms": median([r.p50_ms for r in results]),
        "p99_ms": median([r.p99_ms for r in results]),
        "p999_ms": median([r.p999_ms for r in results]),
        "errors": sum(r.errors for r in results),
    }


@contextmanager
def baseline_server(kind: str) -> Iterator[tuple[str, PeakRss]]:
    port = free_port()
    topology = unique("bench-naive")
    args = [
        sys.executable,
        "-m",
        "bench.baseline_servers",
        kind,
        "--port",
        str(port),
        "--amqp-url",
        amqp_url(),
        "--topology",
        topology,
    ]
    try:
        with process(args, port=port) as proc, PeakRss() as rss:
            rss.watch("server", proc.pid)
            yield f"http://127.0.0.1:{port}", rss
    finally:
        if kind == "naive":
            delete_topology(topology)


@contextmanager
def front_server(
    *, memory: bool = False, processes: int = 1, **extra_env: str
) -> Iterator[tuple[str, dict[str, str], PeakRss]]:
    """``assoc-ingest api [--processes N]`` on RabbitMQ, or with ``memory`` the front alone on
    the in-process queue (``bench.memory_front``). Every process of it is watched as
    ``front`` (with ``processes`` above one, the supervisor and its front processes)."""
    port = free_port()
    topology = unique("bench-front")
    with tempfile.TemporaryDirectory(prefix="bench-front-") as tmp:
        env = pipeline_env(topology, Path(tmp), INGEST_PORT=str(port), **extra_env)
        key, secret = create_key(env)
        headers = {"api-key": key, "api-secret": secret, "Content-Type": "application/json"}
        args = [*CLI, "api"]
        if processes != 1:
            args += ["--processes", str(processes)]
        if memory:
            args = [sys.executable, "-m", "bench.memory_front", "--port", str(port)]
            args += ["--data-dir", tmp]
        try:
            with process(args, env=env, port=port) as proc, PeakRss() as rss:
                rss.watch("front", proc.pid)
                if processes > 1:
                    for child in _children(proc.pid, processes):
                        rss.watch("front", child)
                yield f"http://127.0.0.1:{port}", headers, rss
        finally:
            if not memory:
                delete_topology(topology)


def _children(pid: int, count: int, timeout: float = 30.0) -> list[int]:
    """The PIDs of the ``count`` front processes ``pid`` forked, once they all listen."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    parent = psutil.Process(pid)
    while time.monotonic() < deadline:
        children = parent.children()
        listening = [c for c in children if any(x.status == "LISTEN" for x in c.net_connections())]
        if len(listening) >= count:
            return [c.pid for c in listening]
        time.sleep(0.1)
    raise TimeoutError(f"{count} front processes of {pid} do not all listen after {timeout} s")


def front_bulk(runs: int, seconds: float, connections: int, items: int = 1000) -> dict[str, Any]:
    bodies = bulk_bodies(40, items)
    with front_server() as (url, headers, rss):
        run_wrk(url, PATH_BULK, bodies[:5], headers, seconds=1, connections=connections)
        results = [
            run_wrk(url, PATH_BULK, bodies, headers, seconds=seconds, connections=connections)
            for _ in range(runs)
        ]
    summary = summarise(results)
    return {
        **summary,
        "items_per_request": items,
        "items_rate": summary["rate"] * items,
        "peak_rss_mb": rss.peaks.get("front", 0.0),
    }


def front_keys(
    runs: int, seconds: float, connections: int, *, memory: bool = False
) -> dict[str, Any]:
    """Single associations without and with a new ``Idempotency-Key`` on every request, runs
    alternating on one front. ``cpu_us``: the front's CPU time per request (user + system, all
    its threads, the store's included), which a busy shared machine disturbs less than the
    rate; ``cost_us``: what a key adds to it."""
    bodies = association_bodies(20_000)
    plain: list[WrkResult] = []
    keyed: list[WrkResult] = []
    cpu: dict[str | None, list[float]] = {None: [], KEY_HEADER: []}
    with front_server(memory=memory) as (url, headers, rss):
        for key_header in (None, KEY_HEADER):  # warm-up, both paths
            run_wrk(
                url,
                PATH_SINGLE,
                bodies[:2000],
                headers,
                seconds=1,
                connections=connections,
                key_header=key_header,
            )
        for _ in range(runs):
            for key_header, results in ((None, plain), (KEY_HEADER, keyed)):
                before = rss.cpu_seconds("front")
                result = run_wrk(
                    url,
                    PATH_SINGLE,
                    bodies,
                    headers,
                    seconds=seconds,
                    connections=connections,
                    key_header=key_header,
                )
                used = rss.cpu_seconds("front") - before
                results.append(result)
                cpu[key_header].append(used / max(result.requests, 1) * 1e6)
    without = {**summarise(plain), "cpu_us": median(cpu[None])}
    with_keys = {**summarise(keyed), "cpu_us": median(cpu[KEY_HEADER])}
    return {
        "queue": "memory" if memory else "rabbitmq",
        "without_keys": without,
        "with_keys": with_keys,
        "cost_us": with_keys["cpu_us"] - without["cpu_us"],
        "peak_rss_mb": rss.peaks.get("front", 0.0),
    }


def main() -> None:
    """``python -m bench.http_bench keys [--memory]``: print ``front_keys`` as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.http_bench")
    parser.add_argument("scenario", choices=["keys"])
    parser.add_argument("--memory", action="store_true", help="the front on the memory queue")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    result = front_keys(args.runs, args.seconds, args.connections, memory=args.memory)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
