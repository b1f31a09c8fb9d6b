"""``FastLaneSite``: an aiohttp site whose connections go through the fast lane."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from ingest_api.fast_lane.lane import FastLane

__all__ = ["FastLaneSite"]


class FastLaneSite(web.SockSite):
    """``web.SockSite`` on ``sock``, the fast lane in front of the runner's application (the
    ``ingest_api.fast_lane`` docstring). On ``stop`` the lane takes no more requests and its
    connections close once their answers are written, within ``shutdown_timeout`` seconds;
    aiohttp's own shutdown (``AppRunner.cleanup``) then closes those aiohttp serves."""

    def __init__(
        self, runner: web.AppRunner, sock: socket.socket, *, shutdown_timeout: float = 60.0
    ) -> None:
        super().__init__(runner, sock)
        self._runner: web.AppRunner = runner
        self._drain_timeout = shutdown_timeout
        self._lane: FastLane | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site (SockSite.start would serve aiohttp)
        server = self._runner.server
        assert server is not None, "start the site after AppRunner.setup()"
        self._lane = FastLane(self._runner.app, server)
        self._server = await asyncio.get_running_loop().create_server(
            self._lane.protocol, sock=self._sock, backlog=self._backlog
        )
        self._lane.start()

    async def stop(self) -> None:
        await super().stop()
        if self._lane is not None:
            await self._lane.close(self._drain_timeout)
            self._lane = None
