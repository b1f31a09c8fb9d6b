"""The fast lane of one listening socket: which requests it takes, the route that answers them,
the aiohttp server for all others, and its connections (closed gracefully on shutdown, and
when idle as long as aiohttp would keep them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ingest_api.fast_lane.protocol import FastLaneProtocol
from ingest_api.fast_lane.single import PATH, SingleAssociationRoute
from ingest_api.state import SETTINGS

__all__ = ["IDLE_TIMEOUT", "MAX_BODY", "FastLane"]

MAX_BODY = 64 * 1024
"""The largest body the lane takes (and the application's own limit, when smaller): one
association, its provenance included, is a few hundred bytes."""

IDLE_TIMEOUT = 3630.0
"""Seconds a connection may stay idle: aiohttp's own keep-alive timeout."""

_SWEEP_EVERY = 30.0

_PATH = PATH.encode()
_FOR_AIOHTTP = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"content-encoding"})
"""Headers whose requests aiohttp answers: bodies framed or encoded otherwise than by a plain
Content-Length."""
_READ = frozenset(
    {
        b"x-request-id",
        b"api-key",
        b"api-secret",
        b"authorization",
        b"user-id",
        b"groups",
        b"idempotency-key",
    }
)
"""Headers the route reads: the request ID, the credentials (``ingest_api.auth``) and the
Idempotency-Key (sent more than once, aiohttp refuses it)."""


class FastLane:
    """See the module docstring; ``protocol`` is the listening socket's protocol factory."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        self.connections: set[FastLaneProtocol] = set()
        self._server = server
        self.answer = SingleAssociationRoute(app).answer
        """The answer to come for a request the lane took (``headers``: what ``takes`` gave)."""
        self._max_body = min(MAX_BODY, app[SETTINGS].max_body_bytes)
        self._sweeper: asyncio.Task[None] | None = None
        self._closed: asyncio.Event | None = None  # set once the lane's connections are closed

    def forget(self, connection: FastLaneProtocol) -> None:
        """``connection`` is closed, or aiohttp's alone."""
        self.connections.discard(connection)
        if self._closed is not None and not self.connections:
            self._closed.set()

    def protocol(self) -> FastLaneProtocol:
        return FastLaneProtocol(self)

    def aiohttp_handler(self) -> RequestHandler:
        """A new aiohttp protocol for one connection, served by the application."""
        return self._server()

    def takes(
        self, method: bytes, target: bytes, version: str, headers: Sequence[tuple[bytes, bytes]]
    ) -> dict[str, str] | None:
        """The headers the route reads (lower-case names, the first of each) when the lane
        answers a request with this head: an HTTP/1.1 ``POST`` of exactly the route's path,
        with one JSON ``Content-Type`` and one ``Content-Length`` of at most its largest body,
        and none of the headers aiohttp must see (``_FOR_AIOHTTP``); else None."""
        if method != b"POST" or target != _PATH or version != "1.1":
            return None
        length: int | None = None
        json = 0
        read: dict[str, str] = {}
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
            elif lower == b"content-type":
                json = 2 if json else int(value == b"application/json")
            elif lower in _READ:
                name_read = lower.decode()
                if name_read == "idempotency-key" and name_read in read:
                    return None
                read.setdefault(name_read, value.decode("utf-8", "surrogateescape"))
            elif lower in _FOR_AIOHTTP:
                return None
        if json == 1 and length is not None and length <= self._max_body:
            return read
        return None

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def close(self, timeout: float) -> None:
        """Take no more requests; wait up to ``timeout`` seconds for the answers in flight,
        then close the lane's connections (aiohttp's own shutdown closes those it serves)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._closed = asyncio.Event()
        for connection in list(self.connections):
            connection.close_when_answered()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout)
        for connection in list(self.connections):
            connection.abort()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_SWEEP_EVERY)
            idle_before = loop.time() - IDLE_TIMEOUT
            for connection in list(self.connections):
                if connection.idle_since < idle_before and not connection.answering:
                    # (one aiohttp serves is left to aiohttp's own keep-alive timeout)
                    connection.close_when_answered()
