"""The long-running processes: ``api``, ``worker`` and ``dev`` (both in one process)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from assoc_ingest.cli.admin import reported_errors
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
    """Settings from the environment, with the command-line flags that were given on top."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        typer.echo(f"error: invalid settings: {_first_problem(exc)}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _first_problem(exc: ValidationError) -> str:
    """One line naming the first invalid setting and why."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", exc)).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{message}{more}"


@app.command()
def api(host: HostOption = None, port: PortOption = None, data_dir: DataDirOption = None) -> None:
    """Run the HTTP front (broker from AMQP_URL, store from MONGODB_URL or --data-dir)."""
    from ingest_api.main import run_api

    with reported_errors():
        run_api(load_settings(host=host, port=port, data_dir=data_dir))


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="messages handled at once")] = None,
    prefetch: Annotated[int | None, typer.Option(help="unacked messages held")] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Prometheus port, 0 to disable")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run one worker process (broker from AMQP_URL, store from MONGODB_URL or --data-dir)."""
    from workers.main import run_worker

    with reported_errors():
        run_worker(
            load_settings(
                worker_concurrency=concurrency,
                worker_prefetch=prefetch,
                metrics_port=metrics_port,
                data_dir=data_dir,
            )
        )


@app.command()
def dev(host: HostOption = None, port: PortOption = None, data_dir: DataDirOption = None) -> None:
    """Front and workers in one process: memory queue and embedded store unless AMQP_URL or
    MONGODB_URL say otherwise. Prints an admin key and a ready-to-paste curl on first start."""
    from assoc_ingest.dev import run_dev

    with reported_errors():
        run_dev(load_settings(host=host, port=port, data_dir=data_dir))
