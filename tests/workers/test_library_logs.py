"""The drivers' own logs during a broker outage: JSON like every other line of a worker's log,
one structured event per reconnect attempt. The outage is a TCP relay in front of the machine's
RabbitMQ that the test cuts (the shared broker itself is never stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bench.common import delete_topology
from tests.assoc_ingest.cli.operator import CLI, ROOT, cli_env

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


class Relay:
    """A TCP relay on a localhost port to ``target``, run by a loop in a thread of its own;
    ``cut()`` closes the listener and every relayed connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()

    def __enter__(self) -> Relay:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(10)

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def relay(amqp_url: str) -> Iterator[Relay]:
    parsed = urlparse(amqp_url)
    with Relay((parsed.hostname or "127.0.0.1", parsed.port or 5672)) as running:
        yield running


def test_a_lost_broker_gives_one_json_event_per_reconnect_attempt(
    relay: Relay, amqp_url: str, unique_name: str, tmp_path: Path
) -> None:
    parsed = urlparse(amqp_url)
    via_relay = amqp_url.replace(parsed.netloc, f"guest:guest@127.0.0.1:{relay.port}")
    env = cli_env(
        tmp_path, AMQP_URL=via_relay, INGEST_TOPOLOGY_NAME=unique_name, INGEST_LOG_LEVEL="INFO"
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*CLI, "worker"], env=env, cwd=ROOT, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while "queue.started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        relay.cut()
        time.sleep(5)  # about four attempts at the queue's 1 s reconnect interval
    finally:
        proc.terminate()
        proc.wait(30)
        delete_topology(unique_name)

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    attempts = [e for e in events if e["event"] == "broker.reconnect_failed"]
    assert len(attempts) >= 2, lines
    assert all(isinstance(e["retry_in"], float) and e["error"] for e in attempts)
    assert not any("exception" in e for e in events if e.get("logger", "").startswith("aio"))
    from_drivers = [
        e for e in events
        if e.get("logger", "").startswith(("aio_pika", "aiormq")) and e["level"] != "info"
    ]  # fmt: skip
    assert len(from_drivers) <= len(attempts) + 2, from_drivers  # one event an attempt
