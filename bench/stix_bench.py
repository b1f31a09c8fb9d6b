"""STIX: the FireEye Poison Ivy report (4,800 objects) replayed under distinct values, posted
to ``POST /stix`` of ``assoc-ingest api`` over RabbitMQ, then stored by N worker processes in
the embedded store.

Two phases, so that each figure has the machine to itself: the bundles are posted with no
worker running (STIX objects acknowledged per second at the front: conversion, encoding,
publish and confirm), then the workers start and drain the queue (items stored per second, end
to end to the store; an item is one entity or association of a bundle, per source).

The replays rewrite every value a bundle names (addresses, domains, hashes, mutexes, the names
of malware, campaigns and threat actors) so that each replay makes new entities; they are only
strings: nothing is resolved or contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import (
    CLI,
    ROOT,
    PeakRss,
    create_key,
    delete_topology,
    free_port,
    pipeline_env,
    process,
    unique,
)
from bench.e2e_bench import submit, wait_done

FIREEYE = (
    ROOT.parent / "shared" / "data" / "stix" / "elevator_fireeye_pivy_report_with_indicators.json"
)
_ADDRESS = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_MD5 = re.compile(r"\b[0-9a-f]{32}\b")
_DOMAIN_VALUE = re.compile(r"(domain-name:value = ')")
_MUTEX_VALUE = re.compile(r"(mutex:name = ')")


def _rewrite(text: str, replay: int) -> str:
    """A pattern or name with every value made distinct for ``replay``."""

    def address(match: re.Match[str]) -> str:
        a, b, c, d = match.groups()
        return f"{a}.{(int(b) + replay) % 256}.{c}.{d}"

    def digest(match: re.Match[str]) -> str:
        return hashlib.md5(f"{replay}:{match.group(0)}".encode()).hexdigest()

    text = _ADDRESS.sub(address, text)
    text = _MD5.sub(digest, text)
    text = _DOMAIN_VALUE.sub(rf"\g<1>r{replay}.", text)
    return _MUTEX_VALUE.sub(rf"\g<1>r{replay}-", text)


def replayed_bundles(count: int) -> list[bytes]:
    """``count`` bodies: the FireEye bundle under distinct values each."""
    document = orjson.loads(FIREEYE.read_bytes())
    bodies = []
    for replay in range(count):
        objects: list[dict[str, Any]] = []
        for obj in document["objects"]:
            copy = dict(obj)
            if isinstance(copy.get("pattern"), str):
                copy["pattern"] = _rewrite(copy["pattern"], replay)
            if copy.get("type") in ("malware", "campaign", "threat-actor") and "name" in copy:
                copy["name"] = f"r{replay} {copy['name']}"
            objects.append(copy)
        bodies.append(orjson.dumps({**document, "objects": objects}))
    return bodies


async def drive(
    base: str, headers: dict[str, str], bodies: list[bytes], start_workers: Any
) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=600)
    objects = len(orjson.loads(bodies[0])["objects"]) * len(bodies)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        started = time.perf_counter()
        jobs = await submit(session, f"{base}/stix", bodies)
        acknowledged = time.perf_counter() - started
        start_workers()
        draining = time.perf_counter()
        totals = await wait_done(session, base, jobs, 900)
        drained = time.perf_counter() - draining
    items = sum(totals.values())
    return {
        "bundles": len(bodies),
        "objects": objects,
        "items": items,
        "outcomes": totals,
        "ack_seconds": acknowledged,
        "objects_per_s_acknowledged": objects / acknowledged,
        "store_seconds": drained,
        "items_per_s_stored": items / drained,
    }


def run(bundles: int = 20, workers: int = 1) -> dict[str, Any]:
    """One run: ``bundles`` replays posted, then drained by ``workers`` processes."""
    bodies = replayed_bundles(bundles)
    port = free_port()
    topology = unique("bench-stix")
    with tempfile.TemporaryDirectory(prefix="bench-stix-") as tmp:
        env = pipeline_env(topology, Path(tmp), INGEST_PORT=str(port))
        key, secret = create_key(env)
        headers = {
            "api-key": key,
            "api-secret": secret,
            "Content-Type": "application/stix+json;version=2.1",
        }
        try:
            with (
                process([*CLI, "api"], env=env, port=port) as front,
                PeakRss() as rss,
                contextlib.ExitStack() as running,
            ):
                rss.watch("front", front.pid)

                def start_workers() -> None:
                    for _ in range(workers):
                        worker = running.enter_context(process([*CLI, "worker"], env=env))
                        rss.watch("worker", worker.pid)

                result = asyncio.run(
                    drive(f"http://127.0.0.1:{port}/api/ingest/v1", headers, bodies, start_workers)
                )
        finally:
            delete_topology(topology)
    return {**result, "workers": workers, "peak_rss_mb": dict(rss.peaks)}


if __name__ == "__main__":
    print(orjson.dumps(run(), option=orjson.OPT_INDENT_2).decode())
