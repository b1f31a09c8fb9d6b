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

__all__ = [
    "REQUEST_LOG",
    "RequestLog",
    "configure_logging",
    "get_logger",
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
        now = time.time()
        whole = int(now)
        second, text = self._second
        if whole != second:
            text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (whole, text)
        event_dict["timestamp"] = f"{text}.{int((now - whole) * 1e6):06d}Z"
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


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the standard library's root logger to render alike, on stderr."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    text_renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else _render_json_text
    )
    shared: list[structlog.typing.Processor] = [
        _request_fields,
        structlog.processors.add_log_level,
        _UtcTimestamp(),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RepeatsOfALoss())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _library_event],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                text_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # JSON lines go out as bytes, straight to stderr's binary stream.
    binary = getattr(sys.stderr, "buffer", None)
    renderer, factory = (
        (_render_json, structlog.BytesLoggerFactory(binary))
        if not use_console and binary is not None
        else (text_renderer, structlog.PrintLoggerFactory(sys.stderr))
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
