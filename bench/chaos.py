"""Fault injection (``make chaos``): the pipeline must lose nothing, count nothing twice and
recover by itself while workers, the front and the broker are killed and the store is locked.

It starts a RabbitMQ node of its own (``bench.private_broker``: its own name, ports and data
directory; never the machine's shared node), the front and two workers on a fresh embedded
store, streams the workload (``bench.chaos_workload``) at a steady pace for ``--duration``
seconds through a client that retries each logical request with its ``Idempotency-Key``
(``bench.chaos_submit``) and, at evenly spaced times during the stream, injects: SIGKILL of
worker 1 (a fresh one replaces it) ``--worker-kills`` times; SIGKILL of the broker node, which
is started again ``--broker-down`` seconds later; SIGKILL of the front, started again on the
same port; an exclusive lock on the store file for ``--store-lock`` seconds. It then waits
(bounded) until every acknowledged job is finished, checks that the front is ready and worker 0
alive, stops everything, reads the SQLite file directly and prints the checks of
``bench.chaos_check``. Exit status 0 only when every check holds.

    python -m bench.chaos                                   # the full run
    python -m bench.chaos --associations 3000 --duration 20 # a short one
    python -m bench.chaos --mongodb-url mongodb://127.0.0.1:27017/ --store-lock 0

With ``--mongodb-url`` the workers write to a fresh database on that MongoDB server instead of
the embedded store (the store lock then does not apply: ``--store-lock 0``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.chaos_check import Recovery, verify
from bench.chaos_faults import FaultRecord, Pipeline, kill_broker, list_queues, lock_store
from bench.chaos_report import ChaosConfig, ChaosReport
from bench.chaos_store import drop_mongo_database, read_mongo_store, read_store
from bench.chaos_submit import ACKNOWLEDGED, Answer, Submitter, poll_jobs
from bench.chaos_workload import Workload, build_workload
from bench.common import create_key, free_port, pipeline_env, unique
from bench.private_broker import PrivateRabbitNode
from workers.backends import SQLITE_FILE_NAME
from workers.queue.base import Topology

__all__ = ["ChaosConfig", "ChaosReport", "main", "run_chaos"]

BASE_PATH = "/api/ingest/v1"
KILLED_WORKER = 1
SURVIVOR = 0


@dataclass
class _Scene:
    """What the faults act on."""

    config: ChaosConfig
    pipeline: Pipeline
    node: PrivateRabbitNode
    store_path: Path


def _fault(name: str, scene: _Scene) -> Callable[[], str]:
    """The blocking action that injects fault ``name``; it returns what happened."""
    pipeline = scene.pipeline
    if name == "kill_worker":

        def kill() -> str:
            old, new = pipeline.kill_worker(KILLED_WORKER)
            return f"pid {old} -> {new}"

        return kill
    if name == "kill_front":

        def kill_front() -> str:
            began = time.monotonic()
            old, new = pipeline.kill_front()
            return f"pid {old} -> {new}, listening {time.monotonic() - began:.1f} s later"

        return kill_front
    if name == "kill_broker":
        return functools.partial(kill_broker, scene.node, scene.config.broker_down)
    return functools.partial(lock_store, scene.store_path, scene.config.store_lock)


async def _inject(scene: _Scene, origin: float) -> list[FaultRecord]:
    records: list[FaultRecord] = []
    for at, name in scene.config.schedule():
        delay = origin + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        began = time.monotonic() - origin
        detail = await asyncio.to_thread(_fault(name, scene))
        records.append(FaultRecord(name, began, time.monotonic() - origin, detail))
    return records


async def _readyz(session: aiohttp.ClientSession, root: str, wait: float = 30.0) -> int | None:
    """The status of ``GET /readyz``, asked until 200 for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    status: int | None = None
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{root}/readyz") as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        if status == 200:
            break
        await asyncio.sleep(0.5)
    return status


@dataclass
class _Run:
    answers: list[Answer]
    left_out: int
    faults: list[FaultRecord]
    polled: dict[str, dict[str, Any]]
    readyz: int | None
    stream_seconds: float
    drain_seconds: float


async def _drive(scene: _Scene, workload: Workload, headers: dict[str, str]) -> _Run:
    config, pipeline = scene.config, scene.pipeline
    root = f"http://127.0.0.1:{pipeline.port}"
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        if await _readyz(session, root) != 200:
            raise RuntimeError("the front never became ready")
        origin = time.monotonic()
        submitter = Submitter(
            session,
            root + BASE_PATH,
            workload,
            config.duration,
            retry_for=config.retry_for,
            repeat_every=config.repeat_every,
            key_prefix=unique("chaos"),
        )
        faults = asyncio.create_task(_inject(scene, origin))
        await submitter.run(origin)
        stream_seconds = time.monotonic() - origin
        records = await faults
        drained = time.monotonic()
        jobs = [a.job_id for a in submitter.answers if a.verdict == ACKNOWLEDGED and a.job_id]
        drain = config.drain_timeout or config.entity_wait + 120
        polled = await poll_jobs(session, root + BASE_PATH, jobs, drain)
        drain_seconds = time.monotonic() - drained
        readyz = await _readyz(session, root)
    return _Run(
        submitter.answers,
        len(submitter.left_out),
        records,
        polled,
        readyz,
        stream_seconds,
        drain_seconds,
    )


def _settle(
    config: ChaosConfig, node: PrivateRabbitNode, names: Topology, workers: int
) -> tuple[dict[str, tuple[int, int, int]], float]:
    """Wait (up to ``config.settle_timeout``) until the work and retry queues are empty, so
    that no copy of a message is still on its way when the store is read, and ``workers``
    consumers are on the work queue (the broker updates that count every few seconds); the
    queues as last seen and the seconds waited."""
    started = time.monotonic()
    while True:
        queues = list_queues(node, f"{names.base}.")
        waiting = sum(r + u for name, (r, u, _) in queues.items() if name != names.dead_queue)
        consumers = queues.get(names.work_queue, (0, 0, 0))[2]
        settled = not waiting and consumers == workers
        if settled or time.monotonic() - started > config.settle_timeout:
            return queues, time.monotonic() - started
        time.sleep(1.0)


@dataclass
class _Ended:
    """A finished scenario, before its store is read."""

    run: _Run
    recovery: Recovery
    pipeline: Pipeline
    settle_seconds: float
    database: str


def _play(config: ChaosConfig, node: PrivateRabbitNode, work_dir: Path) -> _Ended:
    """Start the processes on ``node``, stream and inject, wait for the queues, stop."""
    os.environ["AMQP_URL"] = node.amqp_url  # read by bench.common's helpers
    topology = unique("chaos")
    database = topology.replace("-", "_")
    port = free_port()
    on_mongo: dict[str, str] = {}
    if config.mongodb_url:
        on_mongo = {"MONGODB_URL": config.mongodb_url, "INGEST_MONGODB_DATABASE": database}
    env = pipeline_env(
        topology,
        work_dir / "data",
        INGEST_PORT=str(port),
        INGEST_ENTITY_WAIT=str(config.entity_wait),
        AMQP_URL=node.amqp_url,
        **on_mongo,
    )
    workload = build_workload(config.associations, config.batch)
    key, secret = create_key(env)
    headers = {"api-key": key, "api-secret": secret, "Content-Type": "application/json"}
    pipeline = Pipeline(env, work_dir, port)
    store_path = work_dir / "data" / SQLITE_FILE_NAME
    try:
        pipeline.start()
        survivor_pid = pipeline.worker_procs[SURVIVOR].popen.pid
        run = asyncio.run(_drive(_Scene(config, pipeline, node, store_path), workload, headers))
        names = Topology(base=topology)
        queues, settle_seconds = _settle(config, node, names, len(pipeline.worker_procs))
        assert pipeline.front is not None
        front, survivor = pipeline.front.popen, pipeline.worker_procs[SURVIVOR].popen
        recovery = Recovery(
            front_restarts=pipeline.front_restarts,
            front_alive=front.poll() is None,
            readyz_status=run.readyz,
            survivor_alive=survivor.pid == survivor_pid and survivor.poll() is None,
            queues=queues,
            work_queue=names.work_queue,
            dead_queue=names.dead_queue,
            workers=len(pipeline.worker_procs),
        )
    finally:
        pipeline.stop()
    return _Ended(run, recovery, pipeline, settle_seconds, database)


def run_chaos(config: ChaosConfig) -> ChaosReport:
    """Run the scenario of ``config`` (blocking) on a RabbitMQ node of its own and return its
    report."""
    work_dir = config.work_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    with PrivateRabbitNode(prefix="chaos") as node:
        ended = _play(config, node, work_dir)
    run = ended.run
    if config.mongodb_url:
        store = read_mongo_store(config.mongodb_url, ended.database)
    else:
        store = read_store(work_dir / "data" / SQLITE_FILE_NAME)
    workload = build_workload(config.associations, config.batch)
    faults = [(f.name, f.ended) for f in run.faults]
    checks = verify(workload, run.answers, run.polled, store, ended.recovery, faults)
    report = ChaosReport(
        config,
        checks,
        run.faults,
        run.answers,
        run.left_out,
        store,
        ended.pipeline.events(),
        run.stream_seconds,
        run.drain_seconds,
        ended.settle_seconds,
        work_dir,
    )
    if report.ok and config.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    if report.ok and config.mongodb_url:
        drop_mongo_database(config.mongodb_url, ended.database)
    return report


def _parser() -> argparse.ArgumentParser:
    d = ChaosConfig()
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--associations", type=int, default=d.associations)
    p.add_argument("--batch", type=int, default=d.batch, help="items per bulk request")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds of the stream")
    p.add_argument("--worker-kills", type=int, default=d.worker_kills)
    p.add_argument("--broker-kills", type=int, default=d.broker_kills)
    p.add_argument("--broker-down", type=float, default=d.broker_down, help="seconds killed")
    p.add_argument("--front-kills", type=int, default=d.front_kills)
    p.add_argument(
        "--store-lock",
        type=float,
        default=None,
        help=f"seconds, 0 = none (default {d.store_lock:g}; 0 and only 0 with --mongodb-url)",
    )
    p.add_argument(
        "--retry-for", type=float, default=d.retry_for, help="seconds a request is retried"
    )
    p.add_argument(
        "--repeat-every", type=int, default=d.repeat_every, help="send every n-th request twice"
    )
    p.add_argument(
        "--entity-wait", type=float, default=d.entity_wait, help="INGEST_ENTITY_WAIT of the workers"
    )
    p.add_argument("--drain-timeout", type=float, default=None)
    p.add_argument("--settle-timeout", type=float, default=d.settle_timeout)
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument(
        "--mongodb-url",
        default=None,
        help="run on this MongoDB server instead of the embedded store",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = vars(parser.parse_args(argv))
    if args["store_lock"] is None:
        args["store_lock"] = 0.0 if args["mongodb_url"] else ChaosConfig().store_lock
    elif args["mongodb_url"] and args["store_lock"] > 0:
        parser.error("--store-lock locks the embedded store's file: with --mongodb-url use 0")
    report = run_chaos(ChaosConfig(**args))
    print(report.render(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
