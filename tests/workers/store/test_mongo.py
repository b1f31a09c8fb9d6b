"""What only the MongoDB store promises beyond the contract suite (which runs it too): the
topologies it runs on, what its driver errors become, and that its reads use indexes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import BulkWriteError, OperationFailure

from bench.compatible_mongo import CompatibleMongo
from ingest_api.app import create_app
from tests.backends import MemoryQueueFactory, MongoStoreFactory
from tests.ingest_api.support import BASE, bearer, make_settings
from tests.workers.store import store_factories as f
from workers.ground.errors import ConfigurationError, PermanentError, StoreUnavailable
from workers.store.mongo import MongoStore
from workers.store.mongo.server import translated
from workers.store.records import Outcome

pytestmark = pytest.mark.mongodb

URL = f.entity_id("url", "https://evil.example/payload")
HOST = f.entity_id("domain", "evil.example")
IP = f.entity_id("ip", "203.0.113.7")
ADMIN = bearer("root", ("admin",))
INDEX_SCANS = {"IXSCAN", "IDHACK", "EXPRESS_IXSCAN"}
"""Plan stages that read an index: mongod answers an ``_id`` equality with ``IDHACK`` (8.0:
``EXPRESS_IXSCAN``), SecantusDB with ``IXSCAN``."""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_server_makes_the_store_unavailable() -> None:
    store = MongoStore(
        f"mongodb://127.0.0.1:{_closed_port()}/", "unreachable", server_selection_timeout=0.2
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.existing_entity_ids(["domain-" + "0" * 64])
    finally:
        await store.close()


@pytest.mark.parametrize(
    "failure",
    [
        OperationFailure("not primary", code=10107),
        OperationFailure("interrupted", code=11602),
        OperationFailure("retry me", code=2, details={"errorLabels": ["RetryableWriteError"]}),
        BulkWriteError(
            {"writeErrors": [{"index": 0, "code": 189, "errmsg": "stepped down"}], "nInserted": 0}
        ),
    ],
    ids=["not_writable_primary", "repl_state_change", "retryable_label", "bulk_stepped_down"],
)
async def test_a_failover_error_of_the_server_makes_the_store_unavailable(
    failure: OperationFailure,
) -> None:
    # Raised as they are, the worker would take them for a failing item and dead-letter it.
    with pytest.raises(StoreUnavailable):
        async with translated():
            raise failure


async def test_an_error_of_the_request_itself_is_not_made_transient() -> None:
    with pytest.raises(PermanentError):
        async with translated():
            raise OperationFailure("document too large", code=10334)


# topologies ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def standalone_url() -> Iterator[str]:
    """A SecantusDB server that presents itself as a standalone server (``--standalone``), as
    a ``mongod`` started without ``--replSet`` is."""
    with CompatibleMongo(standalone=True) as server:
        yield server.url


@pytest.fixture
async def standalone_store(
    standalone_url: str, unique_name: str
) -> AsyncIterator[MongoStoreFactory]:
    factory = MongoStoreFactory(standalone_url, unique_name)
    yield factory
    await factory.close_all()


async def test_a_replica_set_member_writes_each_batch_in_a_transaction(
    mongo_store: MongoStoreFactory,
) -> None:
    store = await mongo_store()

    assert store.transactions is True


async def test_a_standalone_server_is_refused_at_start_saying_what_is_not_guaranteed(
    standalone_store: MongoStoreFactory,
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        await standalone_store()

    message = str(refused.value)
    assert "standalone" in message
    assert "not written atomically" in message
    assert "INGEST_MONGODB_ALLOW_STANDALONE=true" in message


async def test_a_standalone_server_the_operator_allowed_is_used_without_transactions(
    standalone_store: MongoStoreFactory,
) -> None:
    store = await standalone_store(allow_standalone=True)
    job = f.new_job(total=2)

    result = await store.write_batch(
        f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST), f.edge(job, 1, URL, HOST)])
    )

    assert store.transactions is False
    assert list(result.outcomes.values()) == [Outcome.STORED, Outcome.DUPLICATE]


# driver errors --------------------------------------------------------------------------------
@contextmanager
def _failing(url: str, command: str, code: int) -> Iterator[None]:
    """The server answers ``command`` with error ``code`` (its ``failCommand`` fail point, a
    test command SecantusDB and mongod both have when started with test commands enabled)."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        try:
            client.admin.command(
                "configureFailPoint",
                "failCommand",
                mode="alwaysOn",
                data={"failCommands": [command], "errorCode": code},
            )
        except Exception as exc:
            pytest.skip(f"the server has no failCommand fail point: {exc}")
        yield
    finally:
        client.admin.command("configureFailPoint", "failCommand", mode="off")
        client.close()


@pytest.mark.parametrize("code", [13, 50, 2])  # Unauthorized, MaxTimeMSExpired, BadValue
async def test_a_refused_read_is_a_store_unavailable_not_a_driver_error(
    mongo_store: MongoStoreFactory, mongodb_url: str, code: int
) -> None:
    store = await mongo_store()

    with _failing(mongodb_url, "find", code), pytest.raises(StoreUnavailable):
        await store.get_entities([HOST])


# item outcomes expire with their job -----------------------------------------------------------
async def test_outcomes_of_a_batch_without_its_job_header_expire_with_the_job(
    mongo_store: MongoStoreFactory, mongodb_url: str
) -> None:
    store = await mongo_store()
    job = f.new_job(total=2, created_at=time.time() - 3600)
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
    await store.write_batch(f.batch(edges=[f.edge(job, 1, URL, IP)]))

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        db = client[store.database_name]
        header = await db.jobs.find_one({"_id": job.job_id})
        items = [doc async for doc in db.job_items.find({"job": job.job_id})]
    finally:
        await client.close()
    assert header is not None
    assert len(items) == 2
    assert {item["expiresAt"] for item in items} == {header["expiresAt"]}


# query plans ----------------------------------------------------------------------------------
class _Recorder(monitoring.CommandListener):
    """Keeps the ``find`` and ``aggregate`` commands of one database while ``database`` is set
    (registered once for the process: PyMongo has no way to unregister a listener)."""

    def __init__(self) -> None:
        self.database: str | None = None
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database and event.command_name in {"find", "aggregate"}:
            keep = {"find", "aggregate", "filter", "sort", "hint", "limit", "pipeline"}
            self.commands.append({k: v for k, v in event.command.items() if k in keep})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_RECORDER = _Recorder()
monitoring.register(_RECORDER)


def _stages(plan: Any) -> list[str]:
    """Every ``stage`` of an explained plan, rejected plans left out (mongod lists the plans
    it tried and dropped; a collection scan there is not what runs)."""
    if isinstance(plan, list):
        return [stage for item in plan for stage in _stages(item)]
    if not isinstance(plan, dict):
        return []
    found = [plan["stage"]] if isinstance(plan.get("stage"), str) else []
    for key, value in plan.items():
        if key not in {"rejectedPlans", "command"}:
            found += _stages(value)
    return found


async def test_association_entity_and_job_reads_scan_an_index_never_the_collection(
    mongo_store: MongoStoreFactory,
    memory_queue: MemoryQueueFactory,
    mongodb_url: str,
    aiohttp_client: Any,
) -> None:
    """``GET /entity/{id}/associations`` in every direction, with a type filter and with a
    cursor, ``GET /entity?type=&value=``, ``GET /jobs/{id}`` and ``GET /jobs`` (an admin's: every
    owner's; a user's: their own), each page and the next: every ``find`` and ``aggregate``
    they send is explained, and its winning plan must scan an index (``INDEX_SCANS``) and
    never the collection (``COLLSCAN``).

    SecantusDB explains in mongod's shape (``queryPlanner.winningPlan`` with nested
    ``inputStage``s); its planner differs: it picks an index only when every filtered field is
    in it, and never for ``$or``, hence the hints and the one-query-per-end reads of
    ``workers.store.mongo.queries``. It also sorts what an index scan returns even when the
    index already gives that order (a ``SORT`` stage mongod would not need); the test does not
    assert on that stage.
    """
    store = await mongo_store()
    job = f.new_job(total=3)
    edges = [
        f.edge(job, 0, URL, HOST),
        f.edge(job, 1, URL, IP),
        f.edge(job, 2, f.entity_id("asn", "64500"), IP, "ASN to Address"),
    ]
    await store.write_batch(f.batch(jobs=[job], edges=edges, preset=[f.rejection(job, 3)]))
    other = f.new_job(total=1)
    await store.write_batch(
        f.batch(
            jobs=[other], entities=[f.entity_write(other, 0, f.entity_record("ip", "203.0.113.7"))]
        )
    )
    app = create_app(
        make_settings(), queue=await memory_queue(), store=store, manage_backends=False
    )
    client: TestClient[Any, Any] = await aiohttp_client(app)

    _RECORDER.database, _RECORDER.commands = store.database_name, []
    try:
        for entity, query in [
            (IP, {"direction": "out"}),
            (IP, {"direction": "in"}),
            (IP, {"direction": "both"}),
            (URL, {"direction": "both", "associationType": "URL Host"}),
            (IP, {"direction": "in", "limit": "1"}),
        ]:
            response = await client.get(
                f"{BASE}/entity/{entity}/associations", params=query, headers=ADMIN
            )
            assert response.status == 200, await response.text()
            cursor = (await response.json()).get("nextCursor")
            if cursor:
                again = await client.get(
                    f"{BASE}/entity/{entity}/associations",
                    params={**query, "cursor": cursor},
                    headers=ADMIN,
                )
                assert again.status == 200, await again.text()
        response = await client.get(f"{BASE}/jobs/{job.job_id}", headers=ADMIN)
        assert response.status == 200, await response.text()
        response = await client.get(
            f"{BASE}/entity", params={"type": "ip", "value": "203[.]0.113.7"}, headers=ADMIN
        )
        assert response.status == 200, await response.text()
        for caller in (ADMIN, bearer("alice", ("user",))):
            response = await client.get(f"{BASE}/jobs", params={"limit": "1"}, headers=caller)
            assert response.status == 200, await response.text()
            cursor = (await response.json())["nextCursor"]
            assert cursor, "two jobs make two pages of one"
            again = await client.get(
                f"{BASE}/jobs", params={"limit": "1", "cursor": cursor}, headers=caller
            )
            assert again.status == 200, await again.text()
    finally:
        commands, _RECORDER.database = _RECORDER.commands, None

    explain_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        db = explain_client[store.database_name]
        collections = set()
        for command in commands:
            collection = command.get("find") or command.get("aggregate")
            collections.add(collection)
            if "aggregate" in command:
                command = {**command, "cursor": {}}
            explained = await db.command("explain", command, verbosity="queryPlanner")
            stages = _stages(explained.get("queryPlanner", explained))
            if not stages:  # mongod explains an aggregate stage by stage
                stages = _stages(explained)
            assert INDEX_SCANS & set(stages), (command, explained)
            assert "COLLSCAN" not in stages, (command, explained)
    finally:
        await explain_client.close()
    assert {"associations", "entities", "jobs", "job_items"} <= collections


@pytest.mark.parametrize("command", ["worker", "api"])
def test_a_process_on_a_standalone_server_refuses_to_start_in_one_line(
    standalone_url: str, unique_name: str, command: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "MONGODB_URL": standalone_url,
        "INGEST_MONGODB_DATABASE": unique_name.replace("-", "_"),
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
        "INGEST_METRICS_PORT": "0",
        "INGEST_PORT": str(_closed_port()),
        "INGEST_LOG_FORMAT": "json",
    }

    done = subprocess.run(
        [sys.executable, "-m", "assoc_ingest", command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "INGEST_MONGODB_ALLOW_STANDALONE=true" in errors[0]
    assert "Traceback" not in done.stderr
