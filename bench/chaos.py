"""Fault injection (``make chaos``): the pipeline must lose nothing, duplicate nothing and
recover by itself while workers are killed, the broker stops and the store is locked.

It starts the front and two workers on a fresh embedded store (or, with ``--mongodb-url``, a
fresh database on that MongoDB server) and a unique broker topology,
streams the workload (``bench.chaos_workload``) at a steady pace for ``--duration`` seconds and,
at evenly spaced times during the stream, injects: SIGKILL of worker 1 (a fresh one replaces it)
``--worker-kills`` times; ``rabbitmqctl stop_app`` / ``start_app`` of ``--rabbit-node``; an
exclusive lock on the embedded store's file for ``--store-lock`` seconds (not on MongoDB). It
then waits (bounded) until every acknowledged job is finished, checks that the front (same PID)
is ready and worker 0 alive, stops everything, reads the store directly (``bench.chaos_store``)
and prints the checks of ``bench.chaos_check``. Exit status 0 only when every check holds.

    python -m bench.chaos                                   # the full run, default broker
    python -m bench.chaos --amqp-url amqp://guest:guest@127.0.0.1:5673/ \\
        --rabbit-node chaos@localhost --associations 3000 --duration 20
    python -m bench.chaos --mongodb-url mongodb://127.0.0.1:27017/ --store-lock 0
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
from bench.chaos_faults import FaultRecord, Pipeline, list_queues, lock_store, stop_broker
from bench.chaos_report import ChaosConfig, ChaosReport
from bench.chaos_store import drop_mongo_database, read_mongo_store, read_store
from bench.chaos_submit import ACKNOWLEDGED, Answer, Submitter, poll_jobs
from bench.chaos_workload import Workload, build_workload
from bench.common import create_key, delete_topology, free_port, pipeline_env, unique
from workers.backends import SQLITE_FILE_NAME
from workers.queue.base import Topology

__all__ = ["ChaosConfig", "ChaosReport", "main", "run_chaos"]

BASE_PATH = "/api/ingest/v1"
KILLED_WORKER = 1
SURVIVOR = 0


def _fault(name: str, config: ChaosConfig, pipeline: Pipeline, store: Path) -> Callable[[], str]:
    """The blocking action that injects fault ``name``; it returns what happened."""
    if name == "kill_worker":

        def kill() -> str:
            old, new = pipeline.kill_worker(KILLED_WORKER)
            return f"pid {old} -> {new}"

        return kill
    if name == "stop_broker":
        return functools.partial(stop_broker, config.rabbit_node, config.broker_down)
    return functools.partial(lock_store, store, config.store_lock)


async def _inject(
    config: ChaosConfig, pipeline: Pipeline, store_path: Path, origin: float
) -> list[FaultRecord]:
    records: list[FaultRecord] = []
    for at, name in config.schedule():
        delay = origin + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        began = time.monotonic() - origin
        detail = await asyncio.to_thread(_fault(name, config, pipeline, store_path))
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


async def _drive(
    config: ChaosConfig, pipeline: Pipeline, workload: Workload, headers: dict[str, str]
) -> _Run:
    root = f"http://127.0.0.1:{pipeline.port}"
    store_path = pipeline.run_dir / "data" / SQLITE_FILE_NAME
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        if await _readyz(session, root) != 200:
            raise RuntimeError("the front never became ready")
        origin = time.monotonic()
        submitter = Submitter(session, root + BASE_PATH, workload, config.duration)
        faults = asyncio.create_task(_inject(config, pipeline, store_path, origin))
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
    config: ChaosConfig, names: Topology, workers: int
) -> tuple[dict[str, tuple[int, int, int]], float]:
    """Wait (up to ``config.settle_timeout``) until the work and retry queues are empty, so
    that no copy of a message is still on its way when the store is read, and ``workers``
    consumers are on the work queue (the broker updates that count every few seconds); the
    queues as last seen and the seconds waited."""
    started = time.monotonic()
    while True:
        queues = list_queues(config.rabbit_node, f"{names.base}.")
        waiting = sum(r + u for name, (r, u, _) in queues.items() if name != names.dead_queue)
        consumers = queues.get(names.work_queue, (0, 0, 0))[2]
        settled = not waiting and consumers == workers
        if settled or time.monotonic() - started > config.settle_timeout:
            return queues, time.monotonic() - started
        time.sleep(1.0)


def run_chaos(config: ChaosConfig) -> ChaosReport:
    """Run the scenario of ``config`` (blocking) and return its report."""
    os.environ["AMQP_URL"] = config.amqp_url  # read by bench.common's helpers
    work_dir = config.work_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    work_dir.mkdir(parents=True, exist_ok=True)
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
        AMQP_URL=config.amqp_url,
        **on_mongo,
    )
    workload = build_workload(config.associations, config.batch)
    key, secret = create_key(env)
    headers = {"api-key": key, "api-secret": secret, "Content-Type": "application/json"}
    pipeline = Pipeline(env, work_dir, port)
    try:
        pipeline.start()
        assert pipeline.front is not None
        front_pid = pipeline.front.popen.pid
        survivor_pid = pipeline.worker_procs[SURVIVOR].popen.pid
        run = asyncio.run(_drive(config, pipeline, workload, headers))
        names = Topology(base=topology)
        queues, settle_seconds = _settle(config, names, len(pipeline.worker_procs))
        front, survivor = pipeline.front.popen, pipeline.worker_procs[SURVIVOR].popen
        recovery = Recovery(
            front_same_pid=front.pid == front_pid,
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
        delete_topology(topology)
    if config.mongodb_url:
        store = read_mongo_store(config.mongodb_url, database)
    else:
        store = read_store(work_dir / "data" / SQLITE_FILE_NAME)
    broker_back = max((f.ended for f in run.faults if f.name == "stop_broker"), default=None)
    checks = verify(workload, run.answers, run.polled, store, recovery, broker_back)
    report = ChaosReport(
        config,
        checks,
        run.faults,
        run.answers,
        run.left_out,
        store,
        pipeline.events(),
        run.stream_seconds,
        run.drain_seconds,
        settle_seconds,
        work_dir,
    )
    if report.ok and config.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    if report.ok and config.mongodb_url:
        drop_mongo_database(config.mongodb_url, database)
    return report


def _parser() -> argparse.ArgumentParser:
    d = ChaosConfig()
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--associations", type=int, default=d.associations)
    p.add_argument("--batch", type=int, default=d.batch, help="items per bulk request")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds of the stream")
    p.add_argument("--worker-kills", type=int, default=d.worker_kills)
    p.add_argument("--broker-stops", type=int, default=d.broker_stops)
    p.add_argument("--broker-down", type=float, default=d.broker_down, help="seconds stopped")
    p.add_argument(
        "--store-lock",
        type=float,
        default=None,
        help=f"seconds, 0 = none (default {d.store_lock:g}; 0 and only 0 with --mongodb-url)",
    )
    p.add_argument(
        "--entity-wait", type=float, default=d.entity_wait, help="INGEST_ENTITY_WAIT of the workers"
    )
    p.add_argument("--drain-timeout", type=float, default=None)
    p.add_argument("--settle-timeout", type=float, default=d.settle_timeout)
    p.add_argument("--amqp-url", default=d.amqp_url)
    p.add_argument("--rabbit-node", default=None, help="rabbitmqctl -n NODE (default node)")
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
