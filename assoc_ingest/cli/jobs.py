"""``assoc-ingest jobs list|show|wait``: follow jobs on a front; ``assoc-ingest id``: the entity
ID of a value, as the front computes it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

from assoc_ingest.cli.app import app
from assoc_ingest.cli.submit import (
    ApiKeyOption,
    ApiSecretOption,
    ErrorsOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    UrlOption,
    fail,
    follow_jobs,
    make_client,
)
from assoc_ingest.client import IngestClient, SubmitError, SubmitSummary
from schemas import NormalisationError, entity_id

T = TypeVar("T")

jobs_app = typer.Typer(
    name="jobs", help="List your recent jobs, show one, wait for some.", no_args_is_help=True
)
app.add_typer(jobs_app)


def _ask(client: IngestClient, call: Coroutine[Any, Any, T]) -> T:
    async def run() -> T:
        async with client:
            return await call

    try:
        return asyncio.run(run())
    except SubmitError as err:
        call.close()
        raise fail(str(err)) from None


def _job_line(job: dict[str, Any]) -> str:
    counts = job.get("counts") or {}
    done = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    return (
        f"{job['jobID']}  {job['status']:<10}  {job['kind']:<18}  {job['total']:>6} items"
        f"  {done or '-'}  {job['createdAt']}"
    )


@jobs_app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="jobs shown")] = 20,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your most recent jobs, newest first (an admin's: everyone's)."""
    client = make_client(url, api_key, api_secret, token)
    page = _ask(client, client.get_json("jobs", {"limit": str(limit)}))
    if as_json:
        typer.echo(json.dumps(page["items"]))
        return
    if not page["items"]:
        typer.echo("no jobs")
    for job in page["items"]:
        typer.echo(_job_line(job))


@jobs_app.command("show")
def show_job(
    job_id: Annotated[str, typer.Argument(help="job ID, as a write answered it")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """A job's status, counts per outcome and item errors."""
    client = make_client(url, api_key, api_secret, token)
    job = _ask(client, client.get_json(f"jobs/{job_id}"))
    if as_json:
        typer.echo(json.dumps(job))
        return
    typer.echo(_job_line(job))
    for error in job.get("errors") or []:
        typer.echo(f"  item {error['index']}: {error['code']}: {error['message']}")


@jobs_app.command("wait")
def wait_jobs(
    job_ids: Annotated[list[str], typer.Argument(help="job IDs")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    timeout: TimeoutOption = 300.0,
    errors: ErrorsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Wait until the jobs are done (or failed); print one summary of them all and the path
    of a file of their item errors. Exits 1 when an item was rejected or still waits."""
    summary = SubmitSummary(job_ids=list(job_ids))
    client = make_client(url, api_key, api_secret, token)
    result, ok = follow_jobs(client, [summary], timeout=timeout, errors=errors, as_json=as_json)
    if as_json:
        typer.echo(json.dumps(result))
    if not ok:
        raise typer.Exit(1)


@app.command("id")
def id_command(
    type_name: Annotated[str, typer.Argument(metavar="TYPE", help="entity type, e.g. ip")],
    value: Annotated[str, typer.Argument(help="main value, as written anywhere")],
) -> None:
    """Print the entity ID of VALUE as a TYPE entity (normalised first, as the front does)."""
    try:
        typer.echo(entity_id(type_name, value))
    except NormalisationError as err:
        raise fail(str(err)) from None


__all__ = ["id_command", "jobs_app"]
