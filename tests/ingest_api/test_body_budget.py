"""The bytes of request bodies in flight are bounded: beyond, a request waits, then a 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from ingest_api.body_budget import BodyBudget
from tests.ingest_api.support import ASN, BASE, IP, ClientFactory, bearer

Client = TestClient[Any, Any]
ASSOCIATION = orjson.dumps({"entityID": ASN, "relatedEntityID": IP})
NDJSON = {**bearer(), "Content-Type": "application/x-ndjson"}


class HeldBody:
    """A chunked bulk body that stops half-way until ``finish`` is called."""

    def __init__(self) -> None:
        self._go = asyncio.Event()
        self.started = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        yield ASSOCIATION[:20]
        self.started.set()
        await self._go.wait()
        yield ASSOCIATION[20:] + b"\n"

    def finish(self) -> None:
        self._go.set()


async def _hold(client: Client) -> tuple[HeldBody, asyncio.Task[Any]]:
    held = HeldBody()
    task = asyncio.create_task(
        client.post(f"{BASE}/associations", data=held.chunks(), headers=NDJSON)
    )
    await asyncio.wait_for(held.started.wait(), 5)
    await asyncio.sleep(0.1)  # the front has begun reading it
    return held, task


async def _post(client: Client) -> Any:
    return await client.post(f"{BASE}/associations", data=ASSOCIATION + b"\n", headers=NDJSON)


async def test_a_body_beyond_the_bytes_in_flight_waits_briefly_then_gets_503_retry_after(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_body_bytes_in_flight=4096, body_wait_seconds=0.3)
    held, first = await _hold(client)  # chunked: it holds the whole body limit

    refused = await _post(client)

    assert refused.status == 503
    assert (await refused.json())["error"]["code"] == "too_many_large_bodies"
    assert int(refused.headers["Retry-After"]) >= 1
    held.finish()
    assert (await first).status == 202
    assert (await _post(client)).status == 202


async def test_a_waiting_body_goes_ahead_as_soon_as_room_is_freed(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_body_bytes_in_flight=4096, body_wait_seconds=5.0)
    held, first = await _hold(client)
    waiting = asyncio.create_task(_post(client))
    await asyncio.sleep(0.2)
    assert not waiting.done()

    held.finish()

    assert (await first).status == 202
    assert (await asyncio.wait_for(waiting, 5)).status == 202


async def test_small_bodies_within_the_budget_do_not_wait(make_client: ClientFactory) -> None:
    client = await make_client(max_body_bytes_in_flight=1 << 20, body_wait_seconds=0.0)

    statuses = await asyncio.gather(*(_post(client) for _ in range(20)))

    assert [response.status for response in statuses] == [202] * 20


async def test_waiters_are_served_in_order_and_a_large_one_is_not_overtaken() -> None:
    budget = BodyBudget(100, wait=5.0)
    assert await budget.acquire(80)
    large = asyncio.create_task(budget.acquire(60))
    small = asyncio.create_task(budget.acquire(10))  # would fit now, but the large one is first
    await asyncio.sleep(0.05)
    assert not large.done() and not small.done()

    budget.release(80)

    assert await large and await small
    assert budget.in_flight == 70


async def test_a_waiter_that_gives_up_holds_nothing() -> None:
    budget = BodyBudget(100, wait=0.05)
    assert await budget.acquire(100)

    assert not await budget.acquire(10)
    budget.release(100)

    assert budget.in_flight == 0
    assert await budget.acquire(100)
