"""structlog set-up: JSON lines in production (rendered by orjson), readable lines on a terminal.

Events are dotted past-tense names: ``request.completed``, ``job.stored``, ``job.rejected``.

A request handled by the front is one ``RequestLog`` in the ``REQUEST_LOG`` context variable,
set by its middleware: the views fill it (``note_user``, ``note_job``, ``note``) instead of
binding context per request, and the middleware writes it as the request's one access line.
Any other event logged while the request is handled (a warning, an error) carries its
``request_id``, ``user_id`` and ``job_id`` too.

The libraries' own logs (aio-pika, aiormq, aiohttp, pymongo: the standard ``logging`` module)
go through the same renderer, so a JSON log stays one JSON object a line. A lost broker
connection is one ``broker.connection_lost`` event, then one ``broker.reconnect_failed`` event
(with ``error`` and ``retry_in``) per attempt until it is back: the drivers' other messages about
the same loss (a failed transport, the close of each channel) are kept for DEBUG, and the
tracebacks they attach to losses they recover from are left out below ERROR. Every other
library record is one JSON line with its ``logger`` and ``level``, a traceback inside it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from workers.ground.log_sink import LineSink, SinkLogger, TextToSink

__all__ = [
    "REQUEST_LOG",
    "RequestLog",
    "configure_logging",
    "flush_logs",
    "get_logger",
    "log_info_fast",
    "note",
    "note_job",
    "note_user",
]


@dataclass(slots=True)
class RequestLog:
    """What the access line of one request says beyond its method, path, status and time."""

    request_id: str
    user_id: str | None = None
    job_id: str | None = None
    fields: dict[str, Any] | None = None
    """Other facts of the request (``note``), e.g. the items of its job."""


REQUEST_LOG: contextvars.ContextVar[RequestLog | None] = contextvars.ContextVar(
    "request_log", default=None
)


def note_user(user_id: str) -> None:
    """Name the caller of the request being handled (nothing outside a request)."""
    entry = REQUEST_LOG.get()
    if entry is not None:
        entry.user_id = user_id


def note_job(job_id: str) -> None:
    """Name the job the request being handled made or answered with."""
    entry = REQUEST_LOG.get()
    if entry is not None:
        entry.job_id = job_id


def note(**fields: Any) -> None:
    """Add ``fields`` to the access line of the request being handled."""
    entry = REQUEST_LOG.get()
    if entry is not None:
        if entry.fields is None:
            entry.fields = fields
        else:
            entry.fields.update(fields)


def _request_fields(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """``request_id``, ``user_id`` and ``job_id`` of the request being handled, if any."""
    entry = REQUEST_LOG.get()
    if entry is not None:
        event_dict.setdefault("request_id", entry.request_id)
        if entry.user_id is not None:
            event_dict.setdefault("user_id", entry.user_id)
        if entry.job_id is not None:
            event_dict.setdefault("job_id", entry.job_id)
    return event_dict


class _UtcTimestamp:
    """``timestamp`` as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it (always with
    microseconds), the date and time of day formatted once a second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(
        self, logger: Any, method_name: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        now = time.time_ns() // 1000  # microseconds
        whole = now // 1_000_000
        second, text = self._second
        if whole != second:
            text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (whole, text)
        event_dict["timestamp"] = f"{text}.{now % 1_000_000:06d}Z"
        return event_dict


def _fallback(value: Any) -> str:
    return repr(value)


def _json_bytes(event_dict: structlog.typing.EventDict, **_: Any) -> bytes:
    """One event as a JSON object: orjson, or the standard library for what orjson refuses (an
    integer beyond 64 bits, a lone surrogate, a key that is not a string)."""
    try:
        return orjson.dumps(event_dict, default=_fallback)
    except TypeError:
        return json.dumps(event_dict, default=_fallback).encode()


def _format_exc_info(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """structlog's ``format_exc_info``, for the events that have an ``exc_info``."""
    if "exc_info" not in event_dict:
        return event_dict
    return structlog.processors.format_exc_info(logger, method_name, event_dict)


def _render_json(logger: Any, method_name: str, event_dict: structlog.typing.EventDict) -> bytes:
    return _json_bytes(event_dict)


def _render_json_text(logger: Any, method_name: str, event_dict: structlog.typing.EventDict) -> str:
    return _json_bytes(event_dict).decode()


# aio-pika's reconnect messages (aio_pika.robust_connection), as structured events.
_RETRY = r"(?P<retry_in>[0-9.]+) seconds\.$"
_LIBRARY_EVENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^Connection attempt to .* failed: (?P<error>.*)\. Reconnecting after " + _RETRY,
            re.DOTALL,
        ),
        "broker.reconnect_failed",
    ),
    (
        re.compile(
            r"^Reconnect attempt failed .* due to (?P<error>.*)\. Retrying after " + _RETRY,
            re.DOTALL,
        ),
        "broker.reconnect_failed",
    ),
    (
        re.compile(r"^Connection to .* closed\. Reconnecting after " + _RETRY, re.DOTALL),
        "broker.connection_lost",
    ),
)
_QUIET_DRIVERS = ("aio_pika", "aiormq", "pamqp")
_LOSS_REPORTED_BY_DRIVER = "Cancelling cause reader exited abnormally"


class _RepeatsOfALoss(logging.Filter):
    """Leaves out, unless DEBUG is on, the drivers' messages that repeat what the reconnect
    events say: aiormq's failed transport of each attempt, aio-pika's "connection closed,
    reconnecting" of each attempt and its channels' close callbacks failing on a dead one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        template = str(record.msg)
        if record.name == "aiormq.connection":
            return not template.startswith("error when creating transport")
        if record.name == "aio_pika.robust_connection":
            return not template.startswith("Connection to %s closed.")
        if record.name == "aio_pika.tools" and template.startswith("Callback %r error"):
            return "_on_close" not in repr(record.args)
        return True


def _library_event(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """A standard-library record as one structured event: its logger as ``logger``, the known
    reconnect messages of the drivers as named events with their fields, and no traceback of a
    driver's recoverable connection loss (below ERROR). A driver's ERROR record is kept as it
    is, its message as ``event`` and its traceback as ``exception``."""
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is None:
        return event_dict
    event_dict["logger"] = record.name
    message = str(event_dict.get("event", ""))
    if (
        record.name == "aiormq.connection"
        and message == _LOSS_REPORTED_BY_DRIVER
        and record.levelno < logging.ERROR
    ):
        event_dict["event"] = "broker.connection_lost"
    for pattern, name in _LIBRARY_EVENTS:
        found = pattern.match(message)
        if found is not None:
            event_dict["event"] = name
            fields = found.groupdict()
            if "error" in fields:
                event_dict["error"] = fields["error"]
            event_dict["retry_in"] = float(fields["retry_in"])
            break
    if record.name.startswith(_QUIET_DRIVERS) and record.levelno < logging.ERROR:
        event_dict.pop("exc_info", None)
        record.exc_info = None
        record.exc_text = None
    return event_dict


_sink: LineSink | None = None
_timestamp = _UtcTimestamp()
_processors: list[structlog.typing.Processor] = []
"""The chain ``configure_logging`` gave structlog (``structlog.testing.capture_logs`` swaps
its content while it captures)."""
_fast_info: LineSink | None = None
"""The sink of INFO lines when ``log_info_fast`` may render them itself."""
_fallback_logger = structlog.get_logger("workers.ground.logs")


def log_info_fast(event: str, fields: dict[str, Any]) -> None:
    """``get_logger(...).info(event, **fields)`` (and ``fields`` is the event's dict), for the
    line every request writes: when the JSON chain of ``configure_logging`` is in place and
    INFO is on, the line is rendered here, as that chain renders it, without structlog's
    machinery (which costs several times the rendering)."""
    sink = _fast_info
    if sink is not None and _processors and _processors[-1] is _render_json:
        fields["event"] = event
        fields["level"] = "info"
        _timestamp(None, "info", fields)
        sink.hold(_json_bytes(fields) + b"\n")
    else:
        _fallback_logger.info(event, **fields)


def flush_logs() -> None:
    """Write the log lines held for the end of the loop iteration (``log_sink``): call it before
    ``os._exit``, which skips ``atexit``."""
    if _sink is not None:
        _sink.flush()


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the standard library's root logger to render alike, on stderr:
    JSON lines through one ``LineSink`` (``log_sink``), or readable lines on a terminal."""
    global _sink, _fast_info, _processors
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    binary = getattr(sys.stderr, "buffer", None)
    use_sink = not use_console and binary is not None
    flush_logs()
    _sink = LineSink(binary) if use_sink and binary is not None else None
    text_renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else _render_json_text
    )
    shared: list[structlog.typing.Processor] = [
        _request_fields,
        structlog.processors.add_log_level,
        _timestamp,
    ]
    handler: logging.StreamHandler[Any] = logging.StreamHandler(
        sys.stderr if _sink is None else TextToSink(_sink)
    )
    handler.addFilter(_RepeatsOfALoss())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _library_event],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _format_exc_info,
                text_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # JSON lines go out as bytes, straight to stderr's binary stream.
    renderer, factory = (
        (text_renderer, structlog.PrintLoggerFactory(sys.stderr))
        if _sink is None
        else (_render_json, SinkLogger(_sink))
    )
    threshold = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    _processors = [*shared, _format_exc_info, renderer]
    _fast_info = _sink if threshold <= logging.INFO else None
    structlog.configure(
        processors=_processors,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
