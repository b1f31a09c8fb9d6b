"""The API process: settings in, the front served on RabbitMQ and the configured store.

On SIGTERM/SIGINT the front stops accepting connections, lets requests in flight finish (up to
``settings.shutdown_timeout`` seconds), then runs the clean-up contexts (waiting for pending
confirms, flushing job registrations, closing the queue and the store).

With ``processes`` above one, this process forks that many front processes before any event
loop, connection or file exists, each listening on the same port with ``SO_REUSEPORT`` (the
kernel spreads connections over them) with its own broker connection, publisher and store
connection; it forwards SIGTERM/SIGINT to them and waits for them. When one exits on its own,
the others are stopped too and the exit status is non-zero, for the supervisor to restart the
whole front.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from types import FrameType

from aiohttp import web

from ingest_api.app import create_app
from ingest_api.fast_lane import FastLaneSite
from workers.backends import assemble_backends
from workers.ground.errors import ConfigurationError
from workers.ground.heap import settle_heap
from workers.ground.logs import flush_logs, get_logger
from workers.ground.loop import run
from workers.ground.settings import Settings

__all__ = ["listening_socket", "run_api"]

log = get_logger(__name__)

_KILL_GRACE = 10.0
"""Seconds past the shutdown timeout after which a front process that did not stop is killed."""


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket listening on ``host:port``, taken before any backend starts, so that a port in
    use is an ``OSError`` (``EADDRINUSE``) at once rather than after the start-up; with
    ``reuse_port``, one of several processes' sockets on the port (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024, reuse_port=reuse_port)


def run_api(settings: Settings, processes: int = 1) -> int:
    """Serve the front on ``settings.host:settings.port`` until SIGTERM/SIGINT (blocking); the
    exit status (0 after a clean stop).

    Raises ``ConfigurationError`` without ``AMQP_URL`` (use ``assoc-ingest dev`` for the
    in-process queue) or for ``processes`` below one, and ``OSError`` when the address cannot
    be listened on.
    """
    if settings.amqp_url is None:
        raise ConfigurationError("the API process needs AMQP_URL (RabbitMQ); see 'dev' mode")
    if processes < 1:
        raise ConfigurationError(f"--processes must be at least 1, not {processes}")
    if processes == 1:
        sock = listening_socket(settings.host, settings.port)
        run(_serve_until_signal(settings, sock=sock))
        return 0
    _check_can_listen(settings.host, settings.port)
    return _supervise(settings, processes)


def _check_can_listen(host: str, port: int) -> None:
    """``OSError`` when ``host:port`` cannot be listened on with ``SO_REUSEPORT`` (the
    front processes bind it each on their own)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind(address)


async def _serve_until_signal(settings: Settings, *, sock: socket.socket | None = None) -> None:
    """Serve until the first SIGTERM or SIGINT, then shut down gracefully; further signals are
    ignored, so that a terminal's Ctrl-C reaching every process of a group (and the signal
    the supervisor forwards) cannot cut the shutdown short. Listens on ``sock`` when given,
    else binds the port with ``SO_REUSEPORT`` (one of several front processes)."""
    backends = assemble_backends(settings, memory_queue_ok=False)
    app = create_app(settings, queue=backends.queue, store=backends.store)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        handler_cancellation=False,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.setup()
    try:
        if sock is None:
            sock = listening_socket(settings.host, settings.port, reuse_port=True)
        site = FastLaneSite(runner, sock, shutdown_timeout=settings.shutdown_timeout)
        await site.start()
        settle_heap()  # the application, its rules and its connections are made
        log.info("api.starting", host=settings.host, port=settings.port, pid=os.getpid())
        await stop.wait()
    finally:
        await runner.cleanup()
    log.info("api.stopped", pid=os.getpid())


def _supervise(settings: Settings, processes: int) -> int:
    children: set[int] = set()
    stopping = False

    def stop_all(signum: int, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for pid in children:
            _signal(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop_all) for sig in (signal.SIGTERM, signal.SIGINT)}
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # a front process: default signals, serve, never return here
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            status = 0
            try:
                run(_serve_until_signal(settings))
            except BaseException as exc:  # reported, then this process ends
                log.error("api.process_failed", error=repr(exc))
                status = 1
            finally:
                flush_logs()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        children.add(pid)
    log.info("api.processes_started", processes=processes, pids=sorted(children))
    status = 0
    deadline: float | None = None
    while children:
        pid, code = _reap()
        if pid == 0:
            if stopping and deadline is None:
                deadline = time.monotonic() + settings.shutdown_timeout + _KILL_GRACE
            if deadline is not None and time.monotonic() > deadline:
                for child in children:
                    _signal(child, signal.SIGKILL)
            time.sleep(0.1)
            continue
        children.discard(pid)
        exit_code = os.waitstatus_to_exitcode(code)
        if not stopping:
            log.error("api.process_exited", pid=pid, exit_code=exit_code)
            stop_all(signal.SIGTERM)
            status = 1
        elif exit_code != 0:
            status = 1
    log.info("api.stopped", status=status)
    return status


def _reap() -> tuple[int, int]:
    try:
        return os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return 0, 0


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
