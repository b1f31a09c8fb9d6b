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

from ingest_api.app import create_app
from workers.backends import assemble_backends
from workers.ground.logs import configure_logging
from workers.ground.loop import new_event_loop
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
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        loop=new_event_loop(),
        handler_cancellation=False,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
