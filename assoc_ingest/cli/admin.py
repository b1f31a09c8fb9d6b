"""What the administration commands (``keys``, ``types``, ``dlq``) share: the ``--data-dir`` and
``--json`` options, settings from the environment, output, and turning errors into exit codes.

A command exits 0 on success and 1 on a refused request or an unreachable backend, with one
line on standard error saying why; it never prints a traceback for those.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from workers.ground.errors import ConfigurationError, IngestError, TransientError
from workers.ground.settings import Settings

T = TypeVar("T")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Directory of the embedded store (default: INGEST_DATA_DIR or ./var); "
        "ignored when MONGODB_URL is set.",
        file_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def load_settings(data_dir: Path | None) -> Settings:
    """Settings from the environment (``INGEST_*``, ``AMQP_URL``, ``MONGODB_URL``), with
    ``data_dir`` overriding ``INGEST_DATA_DIR`` when given."""
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"invalid settings in the environment: {first_problem(exc)}")
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def first_problem(exc: ValidationError) -> str:
    """One line naming the first invalid setting and why."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", exc)).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{message}{more}"


def fail(message: str) -> NoReturn:
    """Print ``message`` on standard error and exit with status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the pipeline's own errors into one line on standard error and exit status 1."""
    try:
        yield
    except ConfigurationError as exc:
        fail(str(exc))
    except TransientError as exc:
        fail(f"backend unavailable: {exc}")
    except IngestError as exc:
        fail(str(exc))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, reporting pipeline errors as ``reported_errors`` does.

    Whatever the backends print or log meanwhile goes to standard error, so that standard
    output carries only the command's result (``--json`` stays parseable). Logging is not
    configured here on purpose: structlog's configuration is process-wide.
    """
    with reported_errors(), redirect_stdout(sys.stderr):
        return asyncio.run(coro)
    raise AssertionError("unreachable")  # pragma: no cover - reported_errors always exits


def print_json(value: object) -> None:
    """Print ``value`` as one JSON document (stable key order as given)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def iso_time(timestamp: float | None) -> str | None:
    """``timestamp`` (seconds since the epoch) as ISO 8601 UTC, None stays None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print ``rows`` as left-aligned columns under ``headers``."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for line in [headers, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())
