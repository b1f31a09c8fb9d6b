"""Where rendered log lines go: one binary stream (stderr), in the order they were logged.

An INFO line logged on a running event loop (a front's access line, one a request) is held
until the end of the loop's current iteration and written together with the others of that
iteration, so that a busy front pays one ``write`` system call per iteration rather than one per
request. Every other line (a warning, an error, a line logged off the loop) is written at once,
after the lines held before it. What is held is written at the latest when the process exits
(``atexit``), or when ``flush`` is called (before ``os._exit``).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from typing import IO, Any

__all__ = ["LineSink", "SinkLogger", "TextToSink"]


class LineSink:
    """Lines to ``stream``, written at once (``write``) or at the end of the loop iteration
    (``hold``); safe to use from any thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._held: list[bytes] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None
        """The loop that will write the held lines (a callback of its current iteration)."""
        atexit.register(self.flush)
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork

    def write(self, line: bytes) -> None:
        """Write ``line`` (ending in a newline) now, after the lines held so far."""
        with self._lock:
            if self._held:
                self._held.append(line)
                self._write_held()
            else:
                self._stream.write(line)
                self._stream.flush()

    def hold(self, line: bytes) -> None:
        """Write ``line`` at the end of the running loop's iteration (now, off any loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write(line)
            return
        with self._lock:
            self._held.append(line)
            if self._flush_on is loop:
                return
            self._flush_on = loop
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every line held (dropped if the stream is closed: at exit, nowhere to go)."""
        with self._lock:
            self._flush_on = None
            if self._held:
                try:
                    self._write_held()
                except (OSError, ValueError):
                    self._held = []

    def _write_held(self) -> None:
        lines, self._held = self._held, []
        self._stream.write(b"".join(lines))
        self._stream.flush()


class SinkLogger:
    """A structlog logger writing rendered events (bytes) to a ``LineSink``: INFO events held
    until the end of the loop iteration, the others written at once."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def info(self, message: bytes) -> None:
        self._sink.hold(message + b"\n")

    def msg(self, message: bytes) -> None:
        self._sink.write(message + b"\n")

    debug = warning = error = critical = exception = fatal = failure = err = log = msg

    def __call__(self, *args: Any) -> SinkLogger:
        """The logger factory of ``structlog.configure``: every logger is this one."""
        return self


class TextToSink:
    """A text stream (for ``logging.StreamHandler``) writing through a ``LineSink`` at once, so
    that the standard library's records keep their place among structlog's."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def write(self, text: str) -> int:
        self._sink.write(text.encode("utf-8", "backslashreplace"))
        return len(text)

    def flush(self) -> None:
        """Nothing to do: every write is written at once."""
