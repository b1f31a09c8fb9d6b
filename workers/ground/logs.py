"""structlog set-up: JSON lines in production, readable lines on a terminal.

``request_id``, ``job_id`` and ``user_id`` are bound through contextvars
(``structlog.contextvars.bind_contextvars``) and appear on every event logged under them.
Events are dotted past-tense names: ``job.accepted``, ``job.stored``, ``job.rejected``.

The libraries' own logs (aio-pika, aiormq, aiohttp, pymongo: the standard ``logging`` module)
go through the same renderer, so a JSON log stays one JSON object a line. A lost broker
connection is one ``broker.connection_lost`` event, then one ``broker.reconnect_failed`` event
(with ``error`` and ``retry_in``) per attempt until it is back: the drivers' other messages about
the same loss (a failed transport, the close of each channel) are kept for DEBUG, and the
tracebacks they attach to losses they recover from are left out below ERROR. Every other
library record is one JSON line with its ``logger`` and ``level``, a traceback inside it.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

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
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RepeatsOfALoss())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _library_event],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
