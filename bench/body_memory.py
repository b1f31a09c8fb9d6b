"""Peak memory of the front while many request bodies at the body limit arrive at once.

Starts ``assoc-ingest api`` on RabbitMQ (a topology of its own, deleted afterwards) and sends
``--requests`` concurrent requests at the body limit: half are bulk entity bodies of nested
entities just under ``INGEST_MAX_BODY_BYTES`` (the worst case: they grow about 8-fold while
checked and encoded), half bulk association bodies of 10,000 items. Prints the answers by status
and the front's peak resident memory (``VmHWM``, which no sampling can miss), idle and overall.

Run ``python -m bench.body_memory [--requests 64] [--in-flight BYTES] [--body-wait S]``;
``--in-flight`` sets ``INGEST_MAX_BODY_BYTES_IN_FLIGHT`` (default: the shipped setting).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson

from bench.common import CLI, delete_topology, free_port, pipeline_env, process, unique
from schemas import entity_id

MAX_BODY = 16 * 1024 * 1024
BASE = "/api/ingest/v1"


def entity_body(limit: int = MAX_BODY) -> bytes:
    """A JSON array of entities, each with 100 nested addresses, just under ``limit`` bytes."""
    entities: list[bytes] = []
    size = 2
    n = 0
    while True:
        children = [
            {
                "type": "ip",
                "attributes": {"ip": f"203.0.{(n * 100 + c) // 250 % 250}.{c % 250 + 1}"},
            }
            for c in range(100)
        ]
        entity = orjson.dumps(
            {"type": "asn", "attributes": {"asn": f"AS{n + 1}"}, "associations": children}
        )
        if size + len(entity) + 1 > limit or len(entities) >= 10_000:
            return b"[" + b",".join(entities) + b"]"
        entities.append(entity)
        size += len(entity) + 1
        n += 1


def association_body(items: int = 10_000) -> bytes:
    """NDJSON of ``items`` associations ASN -> address."""
    asn = entity_id("asn", "15169")
    lines = (
        orjson.dumps(
            {
                "entityID": asn,
                "relatedEntityID": entity_id("ip", f"198.51.{i // 250 % 250}.{i % 250 + 1}"),
            }
        )
        for i in range(items)
    )
    return b"\n".join(lines) + b"\n"


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


async def fire(port: int, requests: int) -> Counter[str]:
    entities, links = entity_body(), association_body()
    headers = {"user-id": "bench", "groups": "bench"}
    url = f"http://127.0.0.1:{port}{BASE}"
    statuses: Counter[str] = Counter()
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(n: int) -> None:
            if n % 2:
                path, body, kind = "/associations", links, "application/x-ndjson"
            else:
                path, body, kind = "/entities", entities, "application/json"
            async with session.post(
                url + path, data=body, headers={**headers, "Content-Type": kind}
            ) as response:
                code = ""
                if response.status >= 400:
                    code = " " + (await response.json())["error"]["code"]
                statuses[f"{path} {response.status}{code}"] += 1

        await asyncio.gather(*(one(n) for n in range(requests)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--in-flight", type=int, default=None)
    parser.add_argument("--body-wait", type=float, default=None)
    args = parser.parse_args()
    topology = unique("bodymem")
    port = free_port()
    extra = {"INGEST_TRUST_GATEWAY_HEADERS": "true", "INGEST_PORT": str(port)}
    if args.in_flight is not None:
        extra["INGEST_MAX_BODY_BYTES_IN_FLIGHT"] = str(args.in_flight)
    if args.body_wait is not None:
        extra["INGEST_BODY_WAIT_SECONDS"] = str(args.body_wait)
    try:
        with tempfile.TemporaryDirectory(prefix="bodymem-") as tmp:
            env = pipeline_env(topology, Path(tmp), **extra)
            with process([*CLI, "api"], env, port=port) as front:
                time.sleep(1.0)
                idle = peak_rss_mb(front.pid)
                started = time.perf_counter()
                statuses = asyncio.run(fire(port, args.requests))
                elapsed = time.perf_counter() - started
                peak = peak_rss_mb(front.pid)
    finally:
        delete_topology(topology)
    print(f"requests={args.requests} in_flight={args.in_flight or 'default'} ({elapsed:.1f} s)")
    for status, count in sorted(statuses.items()):
        print(f"  {count:3d} x {status}")
    print(f"front peak RSS: idle {idle:.0f} MiB, under load {peak:.0f} MiB")


if __name__ == "__main__":
    main()
