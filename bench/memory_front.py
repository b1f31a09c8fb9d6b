"""A front on the in-process queue and the embedded store, with no worker: for measurements of
the front alone that must not load the machine's shared broker (what it queues stays in its
memory, so keep runs short).

    python -m bench.memory_front --port 8099 --data-dir /tmp/front
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aiohttp import web

from assoc_ingest.dev import wait_for_stop
from ingest_api.app import create_app
from ingest_api.fast_lane import FastLaneSite
from ingest_api.main import listening_socket
from workers.backends import assemble_backends
from workers.ground.heap import settle_heap
from workers.ground.logs import configure_logging
from workers.ground.loop import run
from workers.ground.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    for name in ("AMQP_URL", "INGEST_AMQP_URL"):  # the in-process queue, whatever is set
        os.environ.pop(name, None)
    settings = Settings(port=args.port, data_dir=args.data_dir, log_format="json")
    configure_logging(settings.log_level, settings.log_format)
    backends = assemble_backends(settings, memory_queue_ok=True)
    app = create_app(settings, queue=backends.queue, store=backends.store)
    settle_heap()  # as every process of the pipeline does
    run(_serve(app, settings))


async def _serve(app: web.Application, settings: Settings) -> None:
    """Serve ``app`` as ``assoc-ingest api`` does (the fast lane in front of aiohttp) until
    SIGTERM or SIGINT."""
    runner = web.AppRunner(app, handler_cancellation=False, access_log=None)
    await runner.setup()
    try:
        sock = listening_socket(settings.host, settings.port)
        await FastLaneSite(runner, sock, shutdown_timeout=settings.shutdown_timeout).start()
        await wait_for_stop(None)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
