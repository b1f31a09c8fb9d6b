"""``assoc-ingest submit``: send an NDJSON file to a front's bulk endpoint, with a progress bar."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assoc_ingest.cli.app import app
from assoc_ingest.client import IngestClient, Kind, Source, SubmitError, SubmitSummary

DEFAULT_URL = "http://127.0.0.1:8080"
SHOWN_REJECTIONS = 20

UrlOption = Annotated[
    str, typer.Option("--url", envvar="INGEST_URL", help="base URL of the ingest front")
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
    url: str, api_key: str | None, api_secret: str | None, token: str | None
) -> IngestClient:
    """An ``IngestClient``; inconsistent credentials are a usage error (exit code 2)."""
    try:
        return IngestClient(url, api_key=api_key, api_secret=api_secret, token=token)
    except SubmitError as err:
        raise typer.BadParameter(str(err)) from None


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
    """Submit ``source`` with a progress bar on stderr; exit with code 1 on ``SubmitError``."""
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
            console.print(f"[red]submission stopped:[/red] {err}")
            raise typer.Exit(1) from None


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
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    chunk: ChunkOption = 1000,
    as_json: JsonOption = False,
    fresh_keys: FreshKeysOption = False,
) -> None:
    """Submit FILE (one association or entity body per line) to the bulk endpoint.

    Each chunk carries an Idempotency-Key derived from the file's content and the chunk's
    position, reused on every retry: running the same command again changes nothing for the
    chunks already accepted. Prints the accepted and rejected totals, the job IDs and the
    rejected lines; exits 1 when any line was rejected.
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
    if as_json:
        typer.echo(json.dumps(summary_json(summary)))
    else:
        print_summary(chosen, summary)
    if summary.rejected:
        raise typer.Exit(1)
