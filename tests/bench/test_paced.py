"""The fixed-rate sender holds its schedule and counts a stalled server's delay as latency of
every request that was due during the stall (no coordinated omission)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from bench.common import free_port, wait_for_port
from bench.paced import paced


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """An aiohttp server answering 202 at once, except that the request that arrives 0.5 s
    after the first one waits 0.4 s (and with it every request on the connections behind it)."""
    port = free_port()
    started: list[float] = []
    stalled: list[bool] = []

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        now = time.monotonic()
        if not started:
            started.append(now)
        if not stalled and now - started[0] > 0.5:
            stalled.append(True)
            time.sleep(0.4)  # noqa: ASYNC251  # blocks the loop: every connection stalls
        return web.Response(status=202, body=b"{}", content_type="application/json")

    app = web.Application()
    app.router.add_post("/x", handler)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def test_a_stall_shows_as_latency_and_the_schedule_is_kept(stalling_server: str) -> None:
    result = paced(stalling_server, "/x", [b"{}"], {}, rate=200, seconds=1.5, connections=8)

    assert result.requests == 300  # every request that was due was sent and answered
    assert result.ok == 300 and result.errors == 0
    # The requests due during the 0.4 s stall (about 80 of 300) are timed from when they were
    # due, not from when a connection got free to send them.
    assert result.max_ms >= 300
    assert result.p90_ms >= 50
    assert result.rate_error < 0.25
