"""Throughput of worker processes: association items from RabbitMQ to the embedded store.

``run`` pre-creates the entities directly in a fresh embedded store, starts ``workers`` worker
processes (``python -m workers``) on a topology of its own, then publishes ``items`` association
items (``url`` -> ``domain``, type named, so that matching, the entity check and the upsert all
run) in messages of ``MESSAGE_ITEMS`` items, one job each, and waits until every job is done.
``items_per_s`` counts from the first publish to the last job done, so publishing and the
workers overlap as they do in production; ``worker_cpu_us_per_item`` is the CPU time (user +
system, all threads) the worker processes spent over the same span, per item: on a machine
shared with other work it moves far less than the throughput does. The topology is deleted
afterwards.

Run ``python -m bench.worker_bench [--items N] [--workers 1,2] [--runs R]``; it prints the
median of each figure over the runs for each worker count. The default of 200,000 items makes
a run last seconds rather than well under one (50,000 items took 0.8 s with two workers).

Medians of 3 runs, 2-core development VM shared with other work, same sitting, before and
after the store layout / group commit / planning changes (``workers/store/sqlite_schema.py``,
``workers/store/sqlite/write.py``, ``workers/planning.py``):

==============  ===============  ===============
items/s         1 worker         2 workers
==============  ===============  ===============
50k, before     26.9k            31.9k
50k, after      40.2k            64.0k
200k, before    20.5k / 21.1k    25.5k / 26.1k
200k, after     31.6k / 34.0k    45.3k / 51.1k
==============  ===============  ===============
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from schemas.jobids import new_job_id
from schemas.messages import (
    AssociationItem,
    EntityRecord,
    MessageKind,
    encode_envelope,
    encode_item,
)
from workers.backends import SQLITE_FILE_NAME
from workers.ground.settings import Settings
from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue
from workers.store.records import EntityWrite, JobHeader, WriteBatch
from workers.store.sqlite import SqliteStore

MESSAGE_ITEMS = 1000
ENTITIES_PER_SIDE = 2000
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _ids(type_name: str, count: int, rng: random.Random) -> list[str]:
    return [f"{type_name}-{hashlib.sha3_256(rng.randbytes(16)).hexdigest()}" for _ in range(count)]


async def _seed(store: SqliteStore, urls: list[str], domains: list[str]) -> None:
    now = time.time()
    job = new_job_id()
    every = [("url", eid) for eid in urls] + [("domain", eid) for eid in domains]
    writes = [
        EntityWrite(
            key=(job, index),
            entities=(EntityRecord(id=eid, type=kind, attributes={kind: eid}),),
        )
        for index, (kind, eid) in enumerate(every)
    ]
    await store.write_batch(
        WriteBatch(
            now=now,
            jobs=[JobHeader(job, "entity", "bench", (), len(writes), now)],
            entities=writes,
        )
    )


def _messages(items: int, urls: list[str], domains: list[str]) -> tuple[list[bytes], list[str]]:
    bodies: list[bytes] = []
    jobs: list[str] = []
    now = time.time()
    pairs = ((u, d) for u in urls for d in domains)
    for start in range(0, items, MESSAGE_ITEMS):
        count = min(MESSAGE_ITEMS, items - start)
        job = new_job_id()
        encoded = []
        for index in range(count):
            url, domain = next(pairs)
            item = AssociationItem(
                job=job,
                index=index,
                total=count,
                user="bench",
                submitted_at=now,
                entity_id=url,
                related_id=domain,
                association_type="URL Host",
            )
            encoded.append(encode_item(item))
        bodies.append(encode_envelope(MessageKind.ASSOCIATION, encoded))
        jobs.append(job)
    return bodies, jobs


def _spawn(
    amqp_url: str, topology_name: str, data_dir: Path, index: int, extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **extra,
        "AMQP_URL": amqp_url,
        "INGEST_TOPOLOGY_NAME": topology_name,
        "INGEST_DATA_DIR": str(data_dir),
        "INGEST_METRICS_PORT": "0",
        "INGEST_LOG_FORMAT": "json",
    }
    log = (data_dir / f"worker-{index}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=log, stderr=log
    )


async def _until_done(store: SqliteStore, jobs: list[str], deadline: float) -> None:
    remaining = list(jobs)
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(remaining)} jobs not done in time")
        status = await store.get_job(remaining[-1])
        if status is not None and status.processed >= status.total:
            remaining.pop()
            continue
        await asyncio.sleep(0.02)


async def _run(
    amqp_url: str, workers: int, items: int, tmp_dir: Path, extra: dict[str, str]
) -> dict[str, float]:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_dir))
    topology = Topology.from_settings(Settings.model_validate({"topology_name": name}))
    rng = random.Random(11)
    side = max(1, min(ENTITIES_PER_SIDE, int(items**0.5) + 1))
    urls, domains = _ids("url", side, rng), _ids("domain", side, rng)
    bodies, jobs = _messages(items, urls, domains)

    queue = RabbitJobQueue(amqp_url, topology)
    store = SqliteStore(data_dir / SQLITE_FILE_NAME)
    await queue.start()
    await store.start()
    await _seed(store, urls, domains)
    processes = [_spawn(amqp_url, name, data_dir, i, extra) for i in range(workers)]
    try:
        await _wait_started(processes, data_dir)
        cpu_before = sum(_cpu_seconds(process.pid) for process in processes)
        started = time.monotonic()
        for body in bodies:
            await queue.publish(body, message_id=new_job_id(), timeout=30)
        published = time.monotonic()
        await _until_done(store, jobs, deadline=started + 600)
        elapsed = time.monotonic() - started
        cpu = sum(_cpu_seconds(process.pid) for process in processes) - cpu_before
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        await store.close()
        await queue.delete_topology()
        await queue.close()
    return {
        "workers": float(workers),
        "items": float(items),
        "seconds": elapsed,
        "publish_seconds": published - started,
        "items_per_s": items / elapsed,
        "worker_cpu_us_per_item": cpu / items * 1e6,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, all its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_started(processes: list[subprocess.Popen[bytes]], data_dir: Path) -> None:
    deadline = time.monotonic() + 60
    for index, process in enumerate(processes):
        log = data_dir / f"worker-{index}.log"
        while not (log.exists() and '"worker.started"' in log.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {index} did not start: {log.read_text()[-2000:]}")
            await asyncio.sleep(0.05)


def run(
    amqp_url: str, workers: int, items: int, tmp_dir: Path, extra: dict[str, str] | None = None
) -> dict[str, float]:
    """One measurement: ``items`` association items through ``workers`` worker processes, whose
    environment has ``extra`` on top of this process's (settings at their defaults otherwise)."""
    return asyncio.run(_run(amqp_url, workers, items, tmp_dir, extra or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable of the workers' environment (repeatable), e.g. a setting to compare",
    )
    args = parser.parse_args()
    extra = dict(pair.split("=", 1) for pair in args.env)
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as tmp:
        for count in (int(n) for n in args.workers.split(",")):
            results = [
                run(args.amqp_url, count, args.items, Path(tmp), extra) for _ in range(args.runs)
            ]
            summary = {
                key: statistics.median(result[key] for result in results) for key in results[0]
            }
            print(json.dumps({"bench": "worker", "runs": args.runs, **summary}))


if __name__ == "__main__":
    main()
