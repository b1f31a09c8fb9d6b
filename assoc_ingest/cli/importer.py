"""``assoc-ingest import``: turn a feed file into entity and association bodies.

Writes them as NDJSON (``--out DIR``) or submits them to a front (``--submit``: entities first,
then associations; ``--wait`` follows the jobs to the end), and always prints what was produced
and what was dropped, by reason; ``--rejects FILE`` lists every dropped record with its reason.

Links are checked against the association matrix in force: the front's
(``GET /association-types``) when submitting, else the store's custom types (when there is a
store), so that a custom type such as Host -> Address carries the links feeds state.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from assoc_ingest.cli.admin import load_settings, run
from assoc_ingest.cli.app import app
from assoc_ingest.cli.stix import import_stix
from assoc_ingest.cli.submit import (
    ApiKeyOption,
    ApiSecretOption,
    ChunkOption,
    ErrorsOption,
    FreshKeysOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    UrlOption,
    WaitOption,
    ensure_reachable,
    fail,
    follow_jobs,
    make_client,
    ndjson_lines,
    print_summary,
    send,
    summary_json,
)
from assoc_ingest.client import IngestClient, Kind, SubmitError, SubmitSummary
from assoc_ingest.importers import FEEDS, ImportResult, WrongFile, import_feed
from schemas import AssociationRules, AssociationType
from schemas import Kind as MatrixKind
from workers.backends import SQLITE_FILE_NAME, store_session
from workers.rules_cache import custom_association_types

ENTITIES_FILE = "entities.ndjson"
ASSOCIATIONS_FILE = "associations.ndjson"


def front_rules(client: IngestClient) -> AssociationRules:
    """The matrix the front applies: the defaults and its custom types."""

    async def fetch() -> Any:
        async with client:
            return await client.get_json("association-types")

    try:
        listed = asyncio.run(fetch())
    except SubmitError as err:
        raise fail(f"cannot read the association types: {err}") from None
    custom = [
        AssociationType(
            t["name"],
            MatrixKind(t["primary"]),
            frozenset(MatrixKind(k) for k in t["nonPrimary"]),
            bool(t["fileAction"]),
            custom=True,
        )
        for t in listed
        if t.get("custom")
    ]
    return AssociationRules(custom)


def store_rules() -> AssociationRules:
    """The defaults and the custom types of the configured store, when there is one (an
    import that only writes files does not create an embedded store)."""
    settings = load_settings(None)
    if settings.mongodb_url is None and not (settings.data_dir / SQLITE_FILE_NAME).exists():
        return AssociationRules()

    async def fetch() -> AssociationRules:
        async with store_session(settings) as store:
            return AssociationRules(custom_association_types(await store.list_custom_types()))

    return run(fetch())


def write_rejects(result: ImportResult, path: Path) -> None:
    """One JSON line per dropped record: reason, what was dropped, the source record."""
    with path.open("w", encoding="utf-8") as handle:
        for entry in result.rejects:
            handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


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
    if counts.get("customTypes"):
        typer.echo(f"  custom association types in force: {', '.join(counts['customTypes'])}")


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
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    chunk: ChunkOption = 1000,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    errors: ErrorsOption = None,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", dir_okay=False, help="NDJSON file of every dropped record"),
    ] = None,
    as_json: JsonOption = False,
    fresh_keys: FreshKeysOption = False,
) -> None:
    """Import FILE of FEED; print entity, association and dropped counts.

    With --submit every chunk carries an Idempotency-Key derived from what the feed produced
    and the chunk's position: re-running an interrupted import changes nothing for the chunks
    already accepted. With --submit --wait, waits for the jobs and prints one summary of their
    outcomes. A STIX 2.1 file (FEED stix) is accounted for object by object; --submit sends it to
    POST /stix as one job, with an Idempotency-Key derived from the file's bytes. Exits 1 when a
    submitted item was refused or rejected.
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
    if wait and not submit:
        raise typer.BadParameter("--wait follows submitted jobs: add --submit", param_hint="--wait")
    if submit:
        ensure_reachable(make_client(url, api_key, api_secret, token))
        rules = front_rules(make_client(url, api_key, api_secret, token))
    else:
        rules = store_rules()
    try:
        result = import_feed(feed, file, asn_table=asn_table, rules=rules)
    except WrongFile as err:
        raise fail(str(err)) from None
    except (OSError, ValueError) as err:
        raise fail(f"cannot import {file}: {err}") from None
    counts = result_counts(feed, result)
    counts["customTypes"] = [t.name for t in rules.types if t.custom]
    if out is not None:
        counts["written"] = [str(path) for path in write_ndjson(result, out)]
    if rejects is not None:
        write_rejects(result, rejects)
        counts["rejects"] = str(rejects)
    if not as_json:
        print_counts(counts)
        for path in counts.get("written", []):
            typer.echo(f"wrote {path}")
        if rejects is not None:
            typer.echo(f"dropped records: {rejects}")
    ok = True
    if submit:
        counts["submitted"] = {}
        summaries: list[SubmitSummary] = []
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
            summaries.append(summary)
            counts["submitted"][kind] = summary_json(summary)
            ok = ok and not summary.rejected
            if not as_json:
                print_summary(kind, summary)
        if wait:
            counts["outcome"], ok = follow_jobs(
                make_client(url, api_key, api_secret, token),
                summaries,
                timeout=timeout,
                errors=errors,
                as_json=as_json,
            )
    if as_json:
        typer.echo(json.dumps(counts))
    if not ok:
        raise typer.Exit(1)
