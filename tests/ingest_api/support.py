"""Helpers of the front's tests: settings, credentials, entity IDs, and reading what was
queued."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from schemas import AssociationMessage, EntityMessage, decode_message, entity_id
from workers.ground.settings import Settings
from workers.queue.base import Delivery, JobQueue

JWT_SECRET = "test-secret-for-hs256-tokens-0123456789"
BASE = "/api/ingest/v1"

IP = entity_id("ip", "203.0.113.5")
IP_2 = entity_id("ip", "198.51.100.7")
DOMAIN = entity_id("domain", "example.com")
URL = entity_id("url", "http://example.com/a")
ASN = entity_id("asn", "15169")
FILE = entity_id("md5", "d41d8cd98f00b204e9800998ecf8427e")
MALWARE = entity_id("malware", "emotet")

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
"""``make_client(queue=None, **settings)``: a client of the front (see ``conftest.make_client``)."""


def make_settings(**overrides: Any) -> Settings:
    """Settings of a front under test: a known JWT secret, short publish timeout."""
    values: dict[str, Any] = {
        "jwt_secret": SecretStr(JWT_SECRET),
        "publish_timeout": 2.0,
        "types_refresh_seconds": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


def bearer(
    user: str = "alice",
    roles: tuple[str, ...] = ("reporter",),
    groups: tuple[str, ...] = (),
    *,
    expires_in: float = 24 * 3600.0,
    secret: str = JWT_SECRET,
) -> dict[str, str]:
    """An Authorization header with an HS256 JWT. Modules build some at import time and the
    suite runs for minutes, so the default lifetime outlasts any run (a 300 s token expired
    under a slow CI run)."""
    claims: dict[str, Any] = {
        "sub": user,
        "roles": list(roles),
        "groups": list(groups),
        "exp": int(time.time() + expires_in),
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


class Inbox:
    """Consumes a queue and keeps the decoded messages (acked at once)."""

    def __init__(self) -> None:
        self._messages: asyncio.Queue[AssociationMessage | EntityMessage] = asyncio.Queue()

    async def __call__(self, delivery: Delivery) -> None:
        await self._messages.put(decode_message(delivery.body))
        await delivery.ack()

    async def next(self, within: float = 10.0) -> AssociationMessage | EntityMessage:
        async with asyncio.timeout(within):
            return await self._messages.get()

    async def items(self, count: int, within: float = 10.0) -> list[Any]:
        """The next ``count`` items, across as many messages as carry them."""
        found: list[Any] = []
        while len(found) < count:
            found.extend((await self.next(within)).items)
        return found

    def is_empty(self) -> bool:
        return self._messages.empty()


async def consume(queue: JobQueue) -> Inbox:
    inbox = Inbox()
    await queue.consume(inbox, prefetch=50)
    return inbox
