"""Schemathesis against the served OpenAPI document: no input produces a 5xx, and every error
answer is well formed. Bounded: a few dozen examples per operation."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from ingest_api.app import create_app
from ingest_api.openapi import openapi_document
from tests.ingest_api.support import bearer, make_settings
from workers.queue.base import Topology
from workers.queue.memory import MemoryJobQueue
from workers.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))
# Credentials are ours (an admin JWT), not generated: the fuzzing is of the bodies and paths.
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=25,
    with_security_parameters=False,
)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(context: Any, value: Any) -> bytes:
    """Generated NDJSON bodies: a string as its UTF-8 bytes, anything else as one JSON line."""
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace")
    return json.dumps(value).encode() + b"\n"


class ServedApp:
    """The front on a real localhost port, run by an event loop in a thread of its own."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),))
        self.base_url = ""

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = create_app(
            make_settings(),
            queue=MemoryJobQueue(Topology(base="fuzz")),
            store=SqliteStore(self._data_dir / "store.sqlite3"),
        )
        runner = web.AppRunner(app, handler_cancellation=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with ServedApp(tmp_path_factory.mktemp("fuzz")) as app:
        yield app


@pytest.fixture(scope="module")
def admin() -> dict[str, str]:
    return bearer(user="fuzzer", roles=("admin",), expires_in=3600)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_produces_a_server_error_or_a_malformed_error(
    case: Any, served: ServedApp, admin: dict[str, str]
) -> None:
    response = case.call(base_url=served.base_url, headers=admin)
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        body = orjson.loads(response.content)
        error = body["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        assert response.headers["x-error-id"] == [error["errorID"]]
        assert response.headers["x-error"]
