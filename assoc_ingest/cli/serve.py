"""The long-running processes: ``api``, ``worker`` and ``dev`` (both in one process).

An operator's mistake ends the command with one line on standard error, never a traceback:
``error: invalid settings: ...`` and exit status 2 for invalid settings, ``error: ...`` and exit
status 1 for the rest (a port in use, a missing ``AMQP_URL``, an unreachable backend).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from assoc_ingest.cli.admin import fail, first_problem, reported_errors
from assoc_ingest.cli.app import app
from workers.ground.logs import configure_logging
from workers.ground.settings import Settings

HostOption = Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")]
PortOption = Annotated[int | None, typer.Option(help="port to listen on [default: 8080]")]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="directory of the embedded store [default: ./var]"),
]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command-line flags that were given on top;
    invalid settings end the command with one line naming the first of them (exit status 2)."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        typer.echo(f"error: invalid settings: {first_problem(exc)}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


@contextmanager
def operator_errors(settings: Settings) -> Iterator[None]:
    """The pipeline's own errors (``admin.reported_errors``: a configuration mistake, an
    unreachable backend) and a port that cannot be listened on as one line, exit status 1."""
    where = f"{settings.host}:{settings.port}"
    with reported_errors():
        try:
            yield
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(
                    f"cannot listen on {where}: the address is already in use (another process "
                    "listens there); choose another with --port or INGEST_PORT"
                )
            if exc.errno in (errno.EACCES, errno.EADDRNOTAVAIL):
                fail(f"cannot listen on {where}: {exc.strerror}")
            raise


@app.command()
def api(
    host: HostOption = None,
    port: PortOption = None,
    data_dir: DataDirOption = None,
    processes: Annotated[
        int,
        typer.Option(
            help="front processes sharing the port (SO_REUSEPORT), each with its own "
            "broker connection"
        ),
    ] = 1,
) -> None:
    """Run the HTTP front (broker from AMQP_URL, store from MONGODB_URL or --data-dir)."""
    from ingest_api.main import run_api

    settings = load_settings(host=host, port=port, data_dir=data_dir)
    with operator_errors(settings):
        status = run_api(settings, processes)
    if status:
        raise typer.Exit(status)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="messages handled at once")] = None,
    prefetch: Annotated[int | None, typer.Option(help="unacked messages held")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Prometheus port (the next free one when taken), 0 to disable [default: 9100]",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run one worker process (broker from AMQP_URL, store from MONGODB_URL or --data-dir)."""
    from workers.main import run_worker

    settings = load_settings(
        worker_concurrency=concurrency,
        worker_prefetch=prefetch,
        metrics_port=metrics_port,
        data_dir=data_dir,
    )
    with operator_errors(settings):
        run_worker(settings)


@app.command()
def dev(host: HostOption = None, port: PortOption = None, data_dir: DataDirOption = None) -> None:
    """Front and workers in one process: memory queue and embedded store unless AMQP_URL or
    MONGODB_URL say otherwise. Prints an admin key and a ready-to-paste curl on first start."""
    from assoc_ingest.dev import run_dev

    settings = load_settings(host=host, port=port, data_dir=data_dir)
    with operator_errors(settings):
        run_dev(settings)
