"""The worker process: settings in, a running ``Worker`` on RabbitMQ and the configured store.

Signals are handled here and nowhere else. SIGTERM or SIGINT: stop consuming, finish in-flight
messages for up to ``settings.shutdown_timeout`` seconds (the rest stay unacked and are
redelivered), close the store, then the transport, and return. A SIGKILL at any point loses
nothing: unacked messages go back to the queue and the store's writes are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
from collections.abc import Awaitable, Callable

from prometheus_client import start_http_server

from workers.backends import assemble_backends
from workers.ground.errors import ConfigurationError, TransientError
from workers.ground.heap import settle_heap
from workers.ground.logs import get_logger
from workers.ground.loop import run
from workers.ground.settings import Settings
from workers.worker import Worker

log = get_logger(__name__)

MAX_CONNECT_BACKOFF = 10.0
METRICS_PORTS_TRIED = 16
"""Ports from ``metrics_port`` on that a worker tries, so that several workers on one machine
each find one (9100, 9101, ...)."""


def start_metrics_server(port: int) -> int:
    """Serve the Prometheus metrics on the first free port of ``port`` and the next
    ``METRICS_PORTS_TRIED - 1``; the port chosen (logged as ``worker.metrics_serving``).

    Raises ``ConfigurationError`` saying what to do when all of them are taken.
    """
    for candidate in range(port, min(port + METRICS_PORTS_TRIED, 65536)):
        try:
            start_http_server(candidate)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigurationError(
                    f"cannot serve metrics on port {candidate}: {exc}"
                ) from exc
            continue
        log.info("worker.metrics_serving", port=candidate, asked=port)
        return candidate
    raise ConfigurationError(
        f"metrics ports {port} to {candidate} are all in use; set --metrics-port or "
        "INGEST_METRICS_PORT to a free port (0 disables the metrics server)"
    )


def run_worker(settings: Settings) -> None:
    """Run one worker process until SIGTERM/SIGINT (blocking; uses uvloop when available)."""
    settle_heap()
    run(serve_worker(settings))


async def serve_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run a worker until ``stop`` is set or SIGTERM/SIGINT arrives, then shut down cleanly.

    Raises ``ConfigurationError`` without ``AMQP_URL``: a worker process is useless on the
    in-process queue. While the broker or store cannot be reached at start-up it keeps trying
    (a deployment may start workers before RabbitMQ is ready) until asked to stop.
    """
    backends = assemble_backends(settings, memory_queue_ok=False)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if settings.metrics_port > 0:
        start_metrics_server(settings.metrics_port)
    try:
        if not await _retry_until(backends.start, stop):
            return
        worker = Worker(backends.queue, backends.store, settings)
        if not await _retry_until(worker.start, stop):
            return
        await stop.wait()
        log.info("worker.stopping", timeout=settings.shutdown_timeout)
        await worker.stop(settings.shutdown_timeout)
    finally:
        with contextlib.suppress(Exception):
            await backends.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _retry_until(start: Callable[[], Awaitable[None]], stop: asyncio.Event) -> bool:
    """Call ``start`` until it succeeds (True) or ``stop`` is set (False)."""
    backoff = 0.5
    while not stop.is_set():
        try:
            await start()
            return True
        except TransientError as exc:
            log.warning("worker.start_failed", error=str(exc), retry_in=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_CONNECT_BACKOFF)
    return False
