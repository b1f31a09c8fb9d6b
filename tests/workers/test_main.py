"""Worker processes (``python -m workers``, ``workers.main``) on the real RabbitMQ: crashes and
clean stops.

A SIGKILLed worker loses nothing (its unacked messages go to the other worker and the store's
writes are idempotent); a SIGTERMed one finishes what it holds and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from schemas import AssociationRules
from schemas.jobids import new_job_id
from schemas.messages import AssociationItem, decode_message
from tests.backends import RabbitQueueFactory, SqliteStoreFactory
from tests.workers.factories import association, associations, eid, entities, entity
from tests.workers.helpers import eventually, wait_for_job
from workers.backends import SQLITE_FILE_NAME
from workers.ground.settings import Settings
from workers.planning import plan_message
from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue
from workers.store.records import Direction
from workers.store.sqlite import SqliteStore
from workers.worker import Worker

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ASNS = [("asn", str(64500 + n)) for n in range(10)]
ADDRESSES = [("ip", f"203.0.113.{n}") for n in range(1, 151)]


@dataclass
class Cluster:
    """Worker processes sharing one topology and one embedded store, and a publisher."""

    amqp_url: str
    name: str
    data_dir: Path
    queue: RabbitJobQueue
    store: SqliteStore
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.model_validate(
            {"topology_name": self.name, "data_dir": self.data_dir, "metrics_port": 0}
        )

    def spawn(self) -> subprocess.Popen[bytes]:
        index = len(self.processes)
        env = {
            **os.environ,
            "AMQP_URL": self.amqp_url,
            "INGEST_TOPOLOGY_NAME": self.name,
            "INGEST_DATA_DIR": str(self.data_dir),
            "INGEST_METRICS_PORT": "0",
            "INGEST_WORKER_PREFETCH": "4",
            "INGEST_WORKER_CONCURRENCY": "2",
            "INGEST_LOG_FORMAT": "json",
        }
        log = (self.data_dir / f"worker-{index}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        self.processes.append(process)
        return process

    def log_of(self, index: int) -> str:
        return (self.data_dir / f"worker-{index}.log").read_text()

    async def started(self, index: int) -> None:
        await eventually(lambda: '"worker.started"' in self.log_of(index), within=30)

    async def publish(self, body: bytes) -> None:
        await self.queue.publish(body, message_id=new_job_id())

    async def seed(self) -> None:
        job, every = new_job_id(), [*ASNS, *ADDRESSES]
        await self.publish(
            entities(*(entity(e, job=job, index=i, total=len(every)) for i, e in enumerate(every)))
        )
        await wait_for_job(self.store, job, within=30)

    async def seed_directly(self) -> None:
        """Write the entities straight to the store (before any worker runs)."""
        items = [
            entity(e, index=i, total=len(ASNS) + len(ADDRESSES))
            for i, e in enumerate([*ASNS, *ADDRESSES])
        ]
        plan = plan_message(
            decode_message(entities(*items)), AssociationRules(), (), time.time(), 0
        )
        await self.store.write_batch(plan.batch)


@pytest.fixture
async def cluster(
    rabbit_queue: RabbitQueueFactory,
    sqlite_store: SqliteStoreFactory,
    amqp_url: str,
    unique_name: str,
    tmp_path: Path,
) -> AsyncIterator[Cluster]:
    """The processes share the topology and the store file that their settings name."""
    settings = Settings.model_validate({"topology_name": unique_name, "data_dir": tmp_path})
    queue = await rabbit_queue(Topology.from_settings(settings))
    store = await sqlite_store(SQLITE_FILE_NAME)
    cluster = Cluster(amqp_url, unique_name, tmp_path, queue, store)
    try:
        yield cluster
    finally:
        for process in cluster.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def jobs_of_pairs(passes: int, per_job: int) -> Iterator[list[AssociationItem]]:
    """Every ASN -> Address pair, ``passes`` times, shuffled into jobs of ``per_job`` items."""
    pairs = [(asn, address) for asn in ASNS for address in ADDRESSES]
    submissions = [pair for _ in range(passes) for pair in pairs]
    random.Random(7).shuffle(submissions)
    for start in range(0, len(submissions), per_job):
        chunk = submissions[start : start + per_job]
        job = new_job_id()
        yield [
            association(a, b, job=job, index=i, total=len(chunk)) for i, (a, b) in enumerate(chunk)
        ]


async def test_a_worker_killed_mid_stream_loses_nothing_and_duplicates_nothing(
    cluster: Cluster,
) -> None:
    await cluster.seed_directly()
    cluster.spawn()
    cluster.spawn()
    await asyncio.gather(cluster.started(0), cluster.started(1))
    jobs = list(jobs_of_pairs(passes=2, per_job=10))  # 3000 items in 300 messages
    # Published all at once, faster than two workers drain them: a backlog builds up.
    await asyncio.gather(*(cluster.publish(associations(*items)) for items in jobs))

    async def some_done() -> bool:
        return (await cluster.store.get_job(jobs[5][0].job)) is not None

    await eventually(some_done, within=30)
    last_before_kill = await cluster.store.get_job(jobs[-1][0].job)
    cluster.processes[0].send_signal(signal.SIGKILL)
    statuses = [await wait_for_job(cluster.store, items[0].job, within=60) for items in jobs]

    assert last_before_kill is None or last_before_kill.processed == 0, "killed too late"
    assert cluster.processes[0].wait(10) == -signal.SIGKILL
    assert all(s.processed == s.total == 10 for s in statuses)
    assert sum(s.counts.get("stored", 0) for s in statuses) == len(ASNS) * len(ADDRESSES)
    assert sum(s.counts.get("duplicate", 0) for s in statuses) == len(ASNS) * len(ADDRESSES)
    assert all(set(s.counts) <= {"stored", "duplicate"} for s in statuses)
    for asn in ASNS:
        records, _ = await cluster.store.list_associations(
            eid(asn), direction=Direction.OUT, limit=1000
        )
        assert len(records) == len(ADDRESSES)
        assert {record.submissions for record in records} == {2}


async def test_sigterm_finishes_in_flight_messages_and_exits_zero(cluster: Cluster) -> None:
    process = cluster.spawn()
    await cluster.started(0)
    await cluster.seed()
    jobs = list(jobs_of_pairs(passes=1, per_job=25))  # 1500 items in 60 messages
    await asyncio.gather(*(cluster.publish(associations(*items)) for items in jobs))
    await eventually(lambda: cluster.log_of(0).count('"job.stored"') >= 3, within=30)

    process.send_signal(signal.SIGTERM)
    await eventually(lambda: process.poll() is not None, within=30)

    assert process.returncode == 0
    assert '"worker.stopped"' in cluster.log_of(0)
    assert '"worker.unfinished"' not in cluster.log_of(0)
    # Whatever it did not take up is still queued: a new worker finishes every job exactly.
    drain = Worker(cluster.queue, cluster.store, cluster.settings)
    await drain.start()
    try:
        statuses = [await wait_for_job(cluster.store, items[0].job, within=60) for items in jobs]
    finally:
        await drain.stop(5)
    assert all(s.counts == {"stored": 25} for s in statuses)
    for asn in ASNS:
        records, _ = await cluster.store.list_associations(
            eid(asn), direction=Direction.OUT, limit=1000
        )
        assert {record.submissions for record in records} == {1}
