"""Exactly one true outcome for every acknowledged item, off the happy path too: black-box
checks that start the real ``assoc-ingest api`` and ``assoc-ingest worker`` processes on
RabbitMQ and look only at what the HTTP API and the CLI show."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from schemas import entity_id
from schemas.jobids import new_job_id
from tests.assoc_ingest.deployment import Deployment

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

ENTITY_WAIT = 2.0
ASN = "AS64501"


@pytest.fixture
def deployment(amqp_url: str, unique_name: str, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(
        amqp_url,
        unique_name,
        tmp_path,
        INGEST_ENTITY_WAIT=str(ENTITY_WAIT),
        INGEST_LOG_LEVEL="INFO",
    )
    try:
        yield deployment
    finally:
        deployment.close()


def _address(n: int) -> str:
    return f"203.0.{n // 250}.{n % 250 + 1}"


def _links(count: int) -> list[dict[str, str]]:
    asn = entity_id("asn", ASN)
    return [
        {"entityID": asn, "relatedEntityID": entity_id("ip", _address(n))} for n in range(count)
    ]


def _entities(count: int) -> list[dict[str, Any]]:
    return [{"type": "asn", "attributes": {"asn": ASN}}] + [
        {"type": "ip", "attributes": {"ip": _address(n)}} for n in range(count)
    ]


@pytest.mark.parametrize("links_first", [True, False], ids=["links_first", "entities_first"])
def test_a_backlog_older_than_the_entity_wait_is_stored_whole(
    deployment: Deployment, links_first: bool
) -> None:
    deployment.create_key()
    deployment.start_api()
    count = 300
    singles = [_links(count)[n] for n in range(0, count, 30)]  # and a few single requests

    def submit_links() -> list[str]:
        bulk = deployment.post("/associations", _links(count))["jobID"]
        return [bulk, *(deployment.post("/association", body)["jobID"] for body in singles)]

    def submit_entities() -> None:
        deployment.post("/entities", _entities(count))

    if links_first:
        jobs = submit_links()
        submit_entities()
    else:
        submit_entities()
        jobs = submit_links()
    time.sleep(ENTITY_WAIT + 1.0)  # no worker yet: the backlog is older than the wait
    deployment.start_worker()
    deployment.start_worker()

    done = deployment.wait_done(jobs, within=25)

    # The single requests repeat 10 of the bulk's associations: each pair is stored once.
    assert [job["status"] for job in done] == ["done"] * len(done)
    assert sum(job["counts"]["stored"] for job in done) == count
    assert sum(job["counts"]["duplicate"] for job in done) == len(singles)
    assert sum(job["counts"]["rejected"] for job in done) == 0


def test_a_waiting_item_is_shown_with_the_entity_it_waits_for(deployment: Deployment) -> None:
    deployment.create_key()
    deployment.start_api()
    deployment.start_worker()
    deployment.wait_done([deployment.post("/entity", _entities(0)[0])["jobID"]])
    [link] = _links(1)
    job_id = deployment.post("/association", link)["jobID"]

    deadline = time.monotonic() + 10
    while (job := deployment.job(job_id))["waiting"] == 0:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert (job["status"], job["waitingFor"]) == ("processing", [link["relatedEntityID"]])

    deployment.post("/entity", {"type": "ip", "attributes": {"ip": _address(0)}})
    [done] = deployment.wait_done([job_id])
    assert (done["counts"]["stored"], done["waiting"], done["waitingFor"]) == (1, 0, [])


def test_an_entity_with_a_new_nested_child_counts_the_child_and_its_link(
    deployment: Deployment,
) -> None:
    deployment.create_key()
    deployment.start_api()
    deployment.start_worker()
    parent = {"type": "asn", "attributes": {"asn": ASN}}
    deployment.wait_done([deployment.post("/entity", parent)["jobID"]])

    child = {"type": "ip", "attributes": {"ip": _address(7)}}
    job_id = deployment.post("/entity", {**parent, "associations": [child]})["jobID"]
    [job] = deployment.wait_done([job_id])

    assert (job["status"], job["total"]) == ("done", 3)
    assert (job["counts"]["stored"], job["counts"]["duplicate"]) == (2, 1)


def test_a_poison_item_in_a_busy_stream_fails_alone(deployment: Deployment) -> None:
    deployment.create_key("alice")
    deployment.start_api()
    deployment.start_worker()
    deployment.wait_done([deployment.post("/entities", _entities(0))["jobID"]])

    def stream(n: int) -> str:
        job: str = deployment.post("/entity", {"type": "ip", "attributes": {"ip": _address(n)}})[
            "jobID"
        ]
        return job

    with ThreadPoolExecutor(8) as pool:
        streamed = pool.map(stream, range(200))
        good, poison = asyncio.run(_inject_with_poison(deployment))
        streamed_jobs = list(streamed)

    jobs = deployment.wait_done([*streamed_jobs, *good, poison])
    *fine, failed = jobs
    assert all((j["status"], j["counts"]["stored"]) == ("done", 1) for j in fine)
    assert (failed["status"], failed["counts"]["failed"]) == ("failed", 1)
    assert failed["errors"][0]["code"] == "handler_error"
    [dead] = deployment.dead_letters()
    assert dead["reason"].startswith("handler_error")
    assert [item["job"] for item in json.loads(dead["body"])["items"]] == [poison]


async def _inject_with_poison(deployment: Deployment) -> tuple[list[str], str]:
    """Publish to the work queue, as the front would, one message carrying the entities of
    five jobs and, among them, one that decodes but cannot be stored (an attribute beyond
    64 bits); return the good jobs and the poisoned one."""
    good = [new_job_id() for _ in range(5)]
    poison = new_job_id()
    now = time.time()

    def item(job: str, value: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "job": job,
            "index": 0,
            "total": 1,
            "user": "alice",
            "groups": [],
            "submitted_at": now,
            "entity": {
                "id": entity_id("domain", value),
                "type": "domain",
                "attributes": {"domain": value, **extra},
            },
        }

    items = [item(job, f"good{n}.example.com", {}) for n, job in enumerate(good)]
    items.insert(2, item(poison, "poison.example.com", {"n": 2**70}))
    body = json.dumps({"v": 1, "kind": "entity", "items": items}).encode()
    connection = await aio_pika.connect(deployment.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(deployment.topology)
        message = aio_pika.Message(
            body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=new_job_id()
        )
        await exchange.publish(message, routing_key="jobs")
    return good, poison


def test_behind_a_gateway_no_request_header_grants_a_role(
    amqp_url: str, unique_name: str, tmp_path: Path
) -> None:
    deployment = Deployment(
        amqp_url,
        unique_name,
        tmp_path,
        INGEST_TRUST_GATEWAY_HEADERS="true",
        INGEST_GATEWAY_ADMIN_GROUPS="secops",
    )
    try:
        deployment.start_api()
        key = {"userID": "mallory", "roles": ["admin"], "days": 1}
        spoofed = {"user-id": "mallory", "roles": "admin"}
        admin = {"user-id": "sam", "groups": "secops"}

        refused, _ = deployment.request("POST", "/keys", key, headers=spoofed)
        created, _ = deployment.request("POST", "/keys", key, headers=admin)
        written, _ = deployment.request("POST", "/association", _links(1)[0], headers=spoofed)
    finally:
        deployment.close()

    assert (refused, created, written) == (403, 201, 202)
