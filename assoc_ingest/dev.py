"""``assoc-ingest dev``: the front and the workers in one process, for a first look.

Without ``AMQP_URL`` it runs on the in-process memory queue (not durable: it says so), without
``MONGODB_URL`` on the embedded SQLite store under ``--data-dir``. On the first start (no API key
in the store yet) it creates a key with every role and prints it once, with a curl that creates
two entities and an association between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal
import time

from aiohttp import web

from ingest_api.app import create_app
from ingest_api.fast_lane import FastLaneSite
from ingest_api.keys import new_api_key
from ingest_api.main import listening_socket
from schemas import entity_id
from workers.backends import assemble_backends
from workers.ground.heap import settle_heap
from workers.ground.logs import get_logger
from workers.ground.loop import run
from workers.ground.settings import Settings
from workers.store.base import Store
from workers.worker import Worker

log = get_logger("assoc_ingest.dev")

EXAMPLE_ASN = "AS15169"
EXAMPLE_IP = "8.8.8.8"


def run_dev(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then shut the front, the workers and the backends down."""
    settle_heap()
    run(serve_dev(settings))


async def serve_dev(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run everything until ``stop`` is set (or a signal arrives when ``stop`` is None)."""
    sock = listening_socket(settings.host, settings.port)  # a port in use fails at once
    backends = assemble_backends(settings, memory_queue_ok=True)
    queue, store = backends.queue, backends.store
    log.info(
        "dev.backends_selected",
        queue="rabbitmq" if settings.amqp_url else "memory (not durable)",
        store="mongodb" if settings.mongodb_url else f"sqlite under {settings.data_dir}",
    )
    await backends.start()
    banner = await first_start_banner(settings, store)
    worker = Worker(queue, store, settings)
    await worker.start()
    runner = web.AppRunner(
        create_app(settings, queue=queue, store=store, manage_backends=False),
        handler_cancellation=False,
        access_log=None,
    )
    await runner.setup()
    try:
        await FastLaneSite(runner, sock, shutdown_timeout=settings.shutdown_timeout).start()
        print(f"assoc-ingest dev listening on http://{settings.host}:{settings.port}", flush=True)
        if banner:
            print(banner, flush=True)
        await wait_for_stop(stop)
    finally:
        await runner.cleanup()
        await worker.stop(settings.shutdown_timeout)
        await backends.close()


async def wait_for_stop(stop: asyncio.Event | None) -> None:
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def first_start_banner(settings: Settings, store: Store) -> str | None:
    """Create the first key when the store has none; return the text that shows it once."""
    if await store.list_api_keys():
        return None
    record, secret = new_api_key(
        "admin", ["admin", "reporter", "user"], [], days=None, now=time.time()
    )
    await store.put_api_key(record)
    return example_text(settings, record.key_id, secret)


def example_text(settings: Settings, key_id: str, secret: str) -> str:
    base = f"http://{settings.host}:{settings.port}/api/ingest/v1"
    auth = f"-H {shlex.quote('api-key: ' + key_id)} -H {shlex.quote('api-secret: ' + secret)}"
    asn_id = entity_id("asn", EXAMPLE_ASN)
    ip_id = entity_id("ip", EXAMPLE_IP)

    def post(path: str, body: dict[str, object]) -> str:
        return (
            f"curl -s -X POST {base}{path} {auth} -H 'content-type: application/json' "
            f"-d {shlex.quote(json.dumps(body))}; echo"
        )

    lines = [
        "",
        "First start: created an API key with the roles admin, reporter and user.",
        "It is shown only now; keep it:",
        f"  api-key:    {key_id}",
        f"  api-secret: {secret}",
        "",
        "Try it (two entities, then the ASN -> Address association, then read it back):",
        "",
        post("/entity", {"type": "asn", "attributes": {"asn": EXAMPLE_ASN}}),
        post("/entity", {"type": "ip", "attributes": {"ip": EXAMPLE_IP}}),
        post("/association", {"entityID": asn_id, "relatedEntityID": ip_id}),
        f"sleep 2; curl -s {base}/entity/{ip_id}/associations {auth}; echo",
        "",
    ]
    return "\n".join(lines)
