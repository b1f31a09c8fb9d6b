"""The API process: settings in, the front served on RabbitMQ and the configured store.

``web.run_app`` handles SIGTERM/SIGINT: it stops accepting connections, lets requests in flight
finish (up to ``settings.shutdown_timeout`` seconds), then runs the clean-up contexts (waiting
for pending confirms, flushing job registrations, closing the queue and the store).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from assoc_ingest.errors import ConfigurationError
from assoc_ingest.logs import configure_logging, get_logger
from assoc_ingest.settings import Settings
from ingest_api.app import create_app
from workers.queue.rabbit import RabbitJobQueue
from workers.store import open_store

__all__ = ["run_api"]

log = get_logger(__name__)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed everywhere but Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_api(settings: Settings) -> None:
    """Serve the front on ``settings.host:settings.port`` until SIGTERM/SIGINT (blocking).

    Raises ``ConfigurationError`` without ``AMQP_URL``: use ``assoc-ingest dev`` for the
    in-process queue.
    """
    if settings.amqp_url is None:
        raise ConfigurationError("the API process needs AMQP_URL (RabbitMQ); see 'dev' mode")
    configure_logging(settings.log_level, settings.log_format)
    queue = RabbitJobQueue(settings.amqp_url, settings.topology())
    store = open_store(settings)
    app = create_app(settings, queue=queue, store=store)
    log.info("api.starting", host=settings.host, port=settings.port)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        loop=_new_loop(),
        handler_cancellation=False,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
    )
    log.info("api.stopped")
