"""Backpressure: when the broker cannot confirm, a 503 with Retry-After, then recovery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from schemas import entity_id
from tests.backends import RabbitQueueFactory
from tests.ingest_api.support import ASN, BASE, IP, ClientFactory, bearer, consume

pytestmark = pytest.mark.rabbitmq

Client = TestClient[Any, Any]
ASSOCIATION = {"entityID": ASN, "relatedEntityID": IP}


async def post(client: Client, body: Any = ASSOCIATION, path: str = "/association") -> Any:
    return await client.post(f"{BASE}{path}", json=body, headers=bearer())


async def fill(client: Client) -> list[int]:
    """POST until the queue refuses; the statuses seen. A quorum queue may take a few
    messages beyond its limit before it starts refusing."""
    statuses = []
    for _ in range(20):
        statuses.append((await post(client)).status)
        if statuses[-1] != 202:
            break
    return statuses


async def test_a_full_queue_turns_202_into_503_until_it_is_drained(
    rabbit_queue: RabbitQueueFactory, make_client: ClientFactory
) -> None:
    small_rabbit = await rabbit_queue(max_length=1)
    client = await make_client(small_rabbit)
    statuses = await fill(client)
    assert statuses[0] == 202
    assert statuses[-1] == 503
    refused = await post(client)
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    error = (await refused.json())["error"]
    assert error["code"] == "queue_full"
    assert refused.headers["x-error-id"] == error["errorID"]

    inbox = await consume(small_rabbit)  # drain the queue
    await inbox.items(statuses.count(202))
    for _ in range(50):
        if await small_rabbit.depth() == 0:
            break
        await asyncio.sleep(0.05)
    again = await post(client)
    assert again.status == 202
    assert (await again.json())["message"] == "acknowledged"


async def test_a_bulk_that_cannot_be_confirmed_is_not_acknowledged_at_all(
    rabbit_queue: RabbitQueueFactory, make_client: ClientFactory
) -> None:
    small_rabbit = await rabbit_queue(max_length=1)
    client = await make_client(small_rabbit)
    assert (await fill(client))[-1] == 503
    depth = await small_rabbit.depth()
    bulk = [
        {"entityID": ASN, "relatedEntityID": entity_id("ip", f"203.0.113.{n}")}
        for n in range(1, 11)
    ]
    response = await post(client, bulk, "/associations")
    assert response.status == 503
    assert "Retry-After" in response.headers
    body = await response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "queue_full"
    assert await small_rabbit.depth() == depth


async def test_a_lost_broker_connection_answers_503_then_recovers_by_itself(
    rabbit_queue: RabbitQueueFactory, make_client: ClientFactory
) -> None:
    rabbit = await rabbit_queue()
    client = await make_client(rabbit)
    assert (await post(client)).status == 202
    connection = rabbit.connection
    assert connection is not None
    await connection.reconnect()  # drops the socket; the robust connection reconnects
    lost = await post(client)
    assert lost.status == 503
    assert (await lost.json())["error"]["code"] == "broker_unavailable"
    assert "Retry-After" in lost.headers
    statuses = []
    for _ in range(100):
        response = await post(client)
        statuses.append(response.status)
        if response.status == 202:
            break
        await asyncio.sleep(0.1)
    assert statuses[-1] == 202
