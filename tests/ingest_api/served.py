"""The front on a real localhost port, for clients that are not aiohttp's test client:
schemathesis, a browser."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

from aiohttp import web

from ingest_api.app import create_app
from ingest_api.fast_lane import FastLaneSite
from ingest_api.keys import new_api_key
from tests.ingest_api.support import make_settings
from workers.queue.base import Topology
from workers.queue.memory import MemoryJobQueue
from workers.store.sqlite import SqliteStore

__all__ = ["ServedApp"]


class ServedApp:
    """The front on a real localhost port, run by an event loop in a thread of its own."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),))
        self.base_url = ""
        self.credentials: dict[str, str] = {}

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        path = self._data_dir / "store.sqlite3"
        keys = SqliteStore(path)
        await keys.start()
        record, secret = new_api_key("fuzzer", ["admin", "reporter", "user"], [], 1, time.time())
        await keys.put_api_key(record)
        await keys.close()
        self.credentials = {"api-key": record.key_id, "api-secret": secret}
        app = create_app(
            make_settings(), queue=MemoryJobQueue(Topology(base="fuzz")), store=SqliteStore(path)
        )
        runner = web.AppRunner(app, handler_cancellation=False, access_log=None)
        await runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        await FastLaneSite(runner, sock).start()  # as the front is served
        host, port = sock.getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> ServedApp:
        self._thread.start()
        assert self._ready.wait(30), "the app did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()
