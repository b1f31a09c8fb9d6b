"""``assoc-ingest import``: turn a feed file into entity and association bodies.

Writes them as NDJSON (``--out DIR``) or submits them to a front (``--submit``: entities first,
then associations), and always prints what was produced and what was dropped, by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from assoc_ingest.cli.app import app
from assoc_ingest.cli.stix import import_stix
from assoc_ingest.cli.submit import (
    DEFAULT_URL,
    ApiKeyOption,
    ApiSecretOption,
    ChunkOption,
    FreshKeysOption,
    JsonOption,
    TokenOption,
    UrlOption,
    make_client,
    ndjson_lines,
    print_summary,
    send,
    summary_json,
)
from assoc_ingest.client import Kind
from assoc_ingest.importers import FEEDS, ImportResult, import_feed

ENTITIES_FILE = "entities.ndjson"
ASSOCIATIONS_FILE = "associations.ndjson"


def write_ndjson(result: ImportResult, directory: Path) -> tuple[Path, Path]:
    """Write ``entities.ndjson`` and ``associations.ndjson`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    entities = directory / ENTITIES_FILE
    associations = directory / ASSOCIATIONS_FILE
    for path, bodies in ((entities, result.entities), (associations, result.associations)):
        with path.open("w", encoding="utf-8") as handle:
            for line in ndjson_lines(bodies):
                handle.write(line + "\n")
    return entities, associations


def result_counts(feed: str, result: ImportResult) -> dict[str, Any]:
    """Counts of an import, as printed by ``--json``."""
    return {
        "feed": feed,
        "entities": len(result.entities),
        "associations": len(result.associations),
        "entitiesByType": dict(Counter(body["type"] for body in result.entities)),
        "associationsByType": dict(
            Counter(body["associationType"] for body in result.associations)
        ),
        "dropped": dict(result.dropped.most_common()),
    }


def print_counts(counts: dict[str, Any]) -> None:
    """The counts of an import, for a terminal."""
    typer.echo(
        f"{counts['feed']}: {counts['entities']} entities, "
        f"{counts['associations']} associations, {sum(counts['dropped'].values())} dropped"
    )
    for title, key in (("entities", "entitiesByType"), ("associations", "associationsByType")):
        for name, count in sorted(counts[key].items()):
            typer.echo(f"  {title} {name}: {count}")
    for reason, count in counts["dropped"].items():
        typer.echo(f"  dropped {count}: {reason}")


@app.command("import")
def import_command(
    feed: Annotated[str, typer.Argument(help=f"feed name: {', '.join(FEEDS)}, stix")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="feed file")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", file_okay=False, help="write entities/associations NDJSON here"),
    ] = None,
    submit: Annotated[
        bool, typer.Option("--submit", help="send entities, then associations, to --url")
    ] = False,
    asn_table: Annotated[
        Path | None,
        typer.Option(
            "--ip2asn",
            exists=True,
            dir_okay=False,
            help="ip2asn TSV: also link each address to its CIDR and ASN",
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    chunk: ChunkOption = 1000,
    as_json: JsonOption = False,
    fresh_keys: FreshKeysOption = False,
) -> None:
    """Import FILE of FEED; print entity, association and dropped counts.

    With --submit every chunk carries an Idempotency-Key derived from what the feed produced
    and the chunk's position: re-running an interrupted import changes nothing for the chunks
    already accepted. A STIX 2.1 file (FEED stix) is accounted for object by object; --submit
    sends it to POST /stix as one job, with an Idempotency-Key derived from the file's bytes.
    Exits 1 when a submitted item was rejected.
    """
    if feed == "stix":
        if out is not None and submit:
            raise typer.BadParameter("give either --out or --submit", param_hint="--out")
        import_stix(
            file,
            out=out,
            submit=submit,
            url=url,
            api_key=api_key,
            api_secret=api_secret,
            token=token,
            as_json=as_json,
            fresh_keys=fresh_keys,
        )
        return
    if feed not in FEEDS:
        raise typer.BadParameter(f"unknown feed; choose one of {', '.join(FEEDS)}, stix")
    if out is not None and submit:
        raise typer.BadParameter("give either --out or --submit", param_hint="--out")
    try:
        result = import_feed(feed, file, asn_table=asn_table)
    except (OSError, ValueError) as err:
        typer.echo(f"cannot import {file}: {err}", err=True)
        raise typer.Exit(1) from None
    counts = result_counts(feed, result)
    if out is not None:
        counts["written"] = [str(path) for path in write_ndjson(result, out)]
    if not as_json:
        print_counts(counts)
        for path in counts.get("written", []):
            typer.echo(f"wrote {path}")
    rejected = False
    if submit:
        counts["submitted"] = {}
        batches: tuple[tuple[Kind, list[dict[str, Any]]], ...] = (
            ("entities", result.entities),
            ("associations", [dict(body) for body in result.associations]),
        )
        for kind, bodies in batches:
            client = make_client(url, api_key, api_secret, token)
            lines = ndjson_lines(bodies)
            summary = send(
                client,
                lines,
                kind,
                chunk=chunk,
                total=len(bodies),
                quiet=as_json,
                fresh_keys=fresh_keys,
            )
            counts["submitted"][kind] = summary_json(summary)
            rejected = rejected or bool(summary.rejected)
            if not as_json:
                print_summary(kind, summary)
    if as_json:
        typer.echo(json.dumps(counts))
    if rejected:
        raise typer.Exit(1)
