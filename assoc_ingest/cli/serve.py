"""The long-running processes: ``api``, ``worker`` and ``dev`` (both in one process).

An operator's mistake (a port in use, a missing ``AMQP_URL``, invalid settings) ends the
command with one line on standard error and exit status 1, never a traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from assoc_ingest.cli.app import app
from workers.ground.errors import ConfigurationError
from workers.ground.logs import configure_logging
from workers.ground.settings import Settings

HostOption = Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")]
PortOption = Annotated[int | None, typer.Option(help="port to listen on [default: 8080]")]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="directory of the embedded store [default: ./var]"),
]


def _fail(command: str, message: str) -> typer.Exit:
    typer.echo(f"assoc-ingest {command}: {message}", err=True)
    return typer.Exit(1)


def load_settings(command: str, **overrides: Any) -> Settings:
    """Settings from the environment, with the command-line flags that were given on top;
    invalid settings end the command with one line naming them."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(command, f"invalid settings: {problems}") from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


@contextmanager
def operator_errors(command: str, settings: Settings) -> Iterator[None]:
    """Turn a configuration mistake or a port that cannot be listened on into one line."""
    try:
        yield
    except ConfigurationError as exc:
        raise _fail(command, str(exc)) from None
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            raise _fail(
                command,
                f"cannot listen on {where}: the address is already in use (another process "
                "listens there); choose another with --port or INGEST_PORT",
            ) from None
        if exc.errno in (errno.EACCES, errno.EADDRNOTAVAIL):
            raise _fail(command, f"cannot listen on {where}: {exc.strerror}") from None
        raise


@app.command()
def api(host: HostOption = None, port: PortOption = None, data_dir: DataDirOption = None) -> None:
    """Run the HTTP front (broker from AMQP_URL, store from MONGODB_URL or --data-dir)."""
    from ingest_api.main import run_api

    settings = load_settings("api", host=host, port=port, data_dir=data_dir)
    with operator_errors("api", settings):
        run_api(settings)


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
        "worker",
        worker_concurrency=concurrency,
        worker_prefetch=prefetch,
        metrics_port=metrics_port,
        data_dir=data_dir,
    )
    with operator_errors("worker", settings):
        run_worker(settings)


@app.command()
def dev(host: HostOption = None, port: PortOption = None, data_dir: DataDirOption = None) -> None:
    """Front and workers in one process: memory queue and embedded store unless AMQP_URL or
    MONGODB_URL say otherwise. Prints an admin key and a ready-to-paste curl on first start."""
    from assoc_ingest.dev import run_dev

    settings = load_settings("dev", host=host, port=port, data_dir=data_dir)
    with operator_errors("dev", settings):
        run_dev(settings)
