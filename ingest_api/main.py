"""The API process: settings in, the front served on RabbitMQ and the configured store.

``web.run_app`` handles SIGTERM/SIGINT: it stops accepting connections, lets requests in flight
finish (up to ``settings.shutdown_timeout`` seconds), then runs the clean-up contexts (waiting
for pending confirms, flushing job registrations, closing the queue and the store).
"""

from __future__ import annotations

import socket

from aiohttp import web

from ingest_api.app import create_app
from workers.backends import assemble_backends
from workers.ground.errors import ConfigurationError
from workers.ground.logs import get_logger
from workers.ground.loop import new_event_loop
from workers.ground.settings import Settings

__all__ = ["listening_socket", "run_api"]

log = get_logger(__name__)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, taken before any backend starts, so that a port in
    use is an ``OSError`` (``EADDRINUSE``) at once rather than after the start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


def run_api(settings: Settings) -> None:
    """Serve the front on ``settings.host:settings.port`` until SIGTERM/SIGINT (blocking).

    Raises ``ConfigurationError`` without ``AMQP_URL`` (use ``assoc-ingest dev`` for the
    in-process queue) and ``OSError`` when the address cannot be listened on.
    """
    if settings.amqp_url is None:
        raise ConfigurationError("the API process needs AMQP_URL (RabbitMQ); see 'dev' mode")
    sock = listening_socket(settings.host, settings.port)
    backends = assemble_backends(settings, memory_queue_ok=False)
    app = create_app(settings, queue=backends.queue, store=backends.store)
    log.info("api.starting", host=settings.host, port=settings.port)
    web.run_app(
        app,
        sock=sock,
        loop=new_event_loop(),
        handler_cancellation=False,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
    )
    log.info("api.stopped")
