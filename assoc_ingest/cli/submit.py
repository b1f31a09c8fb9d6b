"""``assoc-ingest submit``: send an NDJSON file to a front's bulk endpoint, with a progress bar;
with ``--wait``, follow its jobs to the end and sum their outcomes up.

The front is ``--url``, else ``INGEST_URL``, else ``http://127.0.0.1:$INGEST_PORT`` (8080): the
address ``assoc-ingest dev`` and ``api`` listen on with the same environment. A front that
cannot be reached is one line and exit status 1, before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assoc_ingest.cli.app import app
from assoc_ingest.client import IngestClient, Kind, Source, SubmitError, SubmitSummary
from assoc_ingest.followup import JobsSummary, wait_for_jobs, write_item_errors

SHOWN_REJECTIONS = 20


def default_url() -> str:
    """``http://127.0.0.1:<INGEST_PORT or 8080>``: where a local front listens."""
    return f"http://127.0.0.1:{os.environ.get('INGEST_PORT', '').strip() or '8080'}"


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="INGEST_URL",
        help="base URL of the ingest front [default: http://127.0.0.1:$INGEST_PORT, 8080]",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="INGEST_API_KEY", help="API key")
]
ApiSecretOption = Annotated[
    str | None, typer.Option("--api-secret", envvar="INGEST_API_SECRET", help="API secret")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="INGEST_TOKEN", help="Bearer JWT")
]
ChunkOption = Annotated[int, typer.Option("--chunk", min=1, max=10_000, help="items per request")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]
WaitOption = Annotated[
    bool,
    typer.Option("--wait", help="wait for the jobs to finish; print one summary of them all"),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0, help="seconds --wait waits at most")
]
ErrorsOption = Annotated[
    Path | None,
    typer.Option(
        "--errors",
        dir_okay=False,
        help="NDJSON file of the item errors [default: assoc-ingest-errors-<time>.ndjson]",
    ),
]
FreshKeysOption = Annotated[
    bool,
    typer.Option(
        "--fresh-keys",
        help="new Idempotency-Keys: send content submitted within the front's window again "
        "as new requests (by default the same content sends the same keys, so a re-run of an "
        "interrupted submission changes nothing)",
    ),
]


def make_client(
    url: str | None, api_key: str | None, api_secret: str | None, token: str | None
) -> IngestClient:
    """An ``IngestClient`` of ``url`` (``default_url()`` when None); inconsistent credentials
    are a usage error (exit code 2)."""
    try:
        return IngestClient(
            url or default_url(), api_key=api_key, api_secret=api_secret, token=token
        )
    except SubmitError as err:
        raise typer.BadParameter(str(err)) from None


def fail(message: str) -> typer.Exit:
    """Print ``message`` as one line on standard error; the exit to raise (status 1)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def ensure_reachable(client: IngestClient) -> None:
    """Exit with one line unless the front answers, before any progress bar is drawn."""

    async def check() -> None:
        async with client:
            await client.check_reachable()

    try:
        asyncio.run(check())
    except SubmitError as err:
        raise fail(str(err)) from None


def follow_jobs(
    client: IngestClient,
    summaries: Sequence[SubmitSummary],
    *,
    timeout: float,
    errors: Path | None,
    as_json: bool,
) -> tuple[dict[str, Any], bool]:
    """Wait for the jobs of ``summaries``, print one summary of them all and the path of the
    file of item errors (front refusals and worker rejections); the summary as JSON, and
    whether it ended well (nothing rejected nor still waiting)."""
    job_ids = [job for summary in summaries for job in summary.job_ids]
    lines = {job: found for summary in summaries for job, found in summary.job_lines.items()}

    async def wait() -> JobsSummary:
        async with client:
            statuses = await wait_for_jobs(client, job_ids, timeout=timeout) if job_ids else []
        return JobsSummary.of(statuses, lines)

    try:
        jobs = asyncio.run(wait())
    except SubmitError as err:
        raise fail(f"cannot follow the jobs: {err}") from None
    refused = [item for summary in summaries for item in summary.rejected]
    result = jobs.as_json()
    result["refusedAtFront"] = len(refused)
    path = None
    if refused or jobs.errors:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = errors or Path(f"assoc-ingest-errors-{stamp}.ndjson")
        write_item_errors(path, refused, jobs)
        result["itemErrors"] = str(path)
    if not as_json:
        for line in jobs.lines():
            typer.echo(line)
        if refused:
            typer.echo(f"  refused at the front: {len(refused)}")
        if jobs.waiting:
            typer.echo(f"  still waiting after {timeout:g} s: {jobs.waiting} items")
        typer.echo(f"item errors: {path}" if path else "item errors: none")
    ok = not refused and not jobs.counts["rejected"] and not jobs.waiting
    return result, ok


def send(
    client: IngestClient,
    source: Source,
    kind: Kind,
    *,
    chunk: int,
    total: int | None,
    quiet: bool,
    fresh_keys: bool = False,
) -> SubmitSummary:
    """Submit ``source`` with a progress bar on stderr; exit with one line and code 1 on
    ``SubmitError`` (an unreachable front is found before the bar is drawn)."""
    ensure_reachable(client)
    console = Console(stderr=True)
    columns = (
        TextColumn(f"{kind}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet) as bar:
        task = bar.add_task(kind, total=total)

        async def run() -> SubmitSummary:
            async with client:
                return await client.submit_ndjson(
                    source,
                    kind,
                    chunk_items=chunk,
                    progress=lambda done: bar.advance(task, done),
                    fresh_keys=fresh_keys,
                )

        try:
            return asyncio.run(run())
        except SubmitError as err:
            bar.stop()
            raise fail(f"submission stopped: {err}") from None


def summary_json(summary: SubmitSummary) -> dict[str, Any]:
    """The summary as printed by ``--json``."""
    return {
        "accepted": summary.accepted,
        "rejected": [{"line": line, "error": error} for line, error in summary.rejected],
        "jobIDs": summary.job_ids,
    }


def print_summary(kind: str, summary: SubmitSummary) -> None:
    """Totals, job IDs and the first rejected lines, for a terminal."""
    typer.echo(f"{kind}: accepted {summary.accepted}, rejected {len(summary.rejected)}")
    if summary.job_ids:
        typer.echo(f"jobs: {' '.join(summary.job_ids)}")
    for line, error in summary.rejected[:SHOWN_REJECTIONS]:
        typer.echo(f"  line {line}: {error.get('code', 'error')}: {error.get('message', '')}")
    if len(summary.rejected) > SHOWN_REJECTIONS:
        typer.echo(f"  ... and {len(summary.rejected) - SHOWN_REJECTIONS} more rejected lines")


def count_lines(path: Path) -> int:
    """Non-blank lines of ``path``: the progress bar's total."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def ndjson_lines(bodies: Iterable[dict[str, Any]]) -> Iterable[str]:
    """One JSON document per body, for ``IngestClient.submit_ndjson``."""
    return (json.dumps(body, ensure_ascii=False, separators=(",", ":")) for body in bodies)


@app.command("submit")
def submit_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="NDJSON file")
    ],
    kind: Annotated[
        str,
        typer.Option("--kind", help="associations or entities", case_sensitive=False),
    ] = "associations",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    chunk: ChunkOption = 1000,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    errors: ErrorsOption = None,
    as_json: JsonOption = False,
    fresh_keys: FreshKeysOption = False,
) -> None:
    """Submit FILE (one association or entity body per line) to the bulk endpoint.

    Each chunk carries an Idempotency-Key derived from the file's content and the chunk's
    position, reused on every retry: running the same command again changes nothing for the
    chunks already accepted. Prints the accepted and rejected totals, the job IDs and the
    rejected lines; with --wait, waits for the jobs and prints one summary of their outcomes
    and the path of a file of the item errors. Exits 1 when any line was refused or rejected
    (or still waits).
    """
    kind = kind.lower()
    if kind not in ("associations", "entities"):
        raise typer.BadParameter("must be associations or entities", param_hint="--kind")
    chosen: Kind = "associations" if kind == "associations" else "entities"
    client = make_client(url, api_key, api_secret, token)
    summary = send(
        client,
        file,
        chosen,
        chunk=chunk,
        total=count_lines(file),
        quiet=as_json,
        fresh_keys=fresh_keys,
    )
    result = summary_json(summary)
    ok = not summary.rejected
    if not as_json:
        print_summary(chosen, summary)
    if wait:
        result["outcome"], ok = follow_jobs(
            make_client(url, api_key, api_secret, token),
            [summary],
            timeout=timeout,
            errors=errors,
            as_json=as_json,
        )
    if as_json:
        typer.echo(json.dumps(result))
    if not ok:
        raise typer.Exit(1)
