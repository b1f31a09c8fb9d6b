"""``assoc-ingest import stix FILE``: what a STIX 2.1 file holds in our vocabulary.

Prints every object's account (entity, association, or not represented by reason) and the
entities and associations it makes, converted here with the default association types.
``--submit`` sends the file as it is to ``POST /stix`` (one job; the front converts it with
the types in force there) with an ``Idempotency-Key`` derived from the file's bytes, so a
re-run within the front's window queues nothing twice (``--fresh-keys`` sends it again);
``--out DIR`` writes the entity and association bodies as NDJSON for ``assoc-ingest submit``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import typer

from assoc_ingest.cli.submit import make_client, ndjson_lines
from assoc_ingest.client import KEY_PREFIX, StixRefused, SubmitError
from schemas.stix import Conversion, bundle_objects, convert_bundle

ENTITIES_FILE = "entities.ndjson"
ASSOCIATIONS_FILE = "associations.ndjson"


def conversion_counts(name: str, conversion: Conversion) -> dict[str, Any]:
    """What ``--json`` prints of a conversion."""
    return {
        "file": name,
        "objects": conversion.counts(),
        "notRepresented": dict(Counter(conversion.reasons()).most_common()),
        "entities": len(conversion.entities),
        "associations": len(conversion.links),
        "entitiesByType": dict(Counter(e.type for e in conversion.entities).most_common()),
        "associationsByType": dict(
            Counter(link.association_type for link in conversion.links).most_common()
        ),
        "notes": dict(conversion.notes.most_common()),
    }


def print_conversion(counts: dict[str, Any]) -> None:
    objects = counts["objects"]
    typer.echo(
        f"{counts['file']}: {objects['total']} objects: {objects['entity']} entity, "
        f"{objects['association']} association, {objects['not_represented']} not represented"
    )
    typer.echo(f"  {counts['entities']} entities, {counts['associations']} associations")
    for title, key in (("entities", "entitiesByType"), ("associations", "associationsByType")):
        for name, count in counts[key].items():
            typer.echo(f"  {title} {name}: {count}")
    for reason, count in counts["notRepresented"].items():
        typer.echo(f"  not represented {count}: {reason}")
    for reason, count in counts["notes"].items():
        typer.echo(f"  left out of represented objects {count}: {reason}")


def write_bodies(conversion: Conversion, directory: Path) -> list[Path]:
    """``entities.ndjson`` (entity bodies) and ``associations.ndjson`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    entities = [{"type": e.type, "attributes": e.attributes} for e in conversion.entities]
    associations = [
        {
            "entityID": link.entity_id,
            "relatedEntityID": link.related_id,
            "associationType": link.association_type,
        }
        for link in conversion.links
    ]
    written = []
    for name, bodies in ((ENTITIES_FILE, entities), (ASSOCIATIONS_FILE, associations)):
        path = directory / name
        with path.open("w", encoding="utf-8") as handle:
            for line in ndjson_lines(bodies):
                handle.write(line + "\n")
        written.append(path)
    return written


def file_key(raw: bytes, fresh: bool = False) -> str:
    """The ``Idempotency-Key`` of a file sent to ``POST /stix``: the same bytes, the same key
    (a re-run within the front's window changes nothing); ``fresh`` adds a random part."""
    salt = uuid.uuid4().hex if fresh else ""
    digest = hashlib.sha256(f"stix\0{salt}\0".encode())
    digest.update(raw)
    return f"{KEY_PREFIX}-stix-{digest.hexdigest()[:40]}"


def import_stix(
    file: Path,
    *,
    out: Path | None,
    submit: bool,
    url: str | None,
    api_key: str | None,
    api_secret: str | None,
    token: str | None,
    as_json: bool,
    fresh_keys: bool = False,
) -> None:
    """The ``import stix`` command (see the module docstring); exits 1 when the file cannot
    be read or the front refuses it."""
    try:
        raw = file.read_bytes()
        objects = bundle_objects(orjson.loads(raw))
    except (OSError, ValueError) as err:  # orjson.JSONDecodeError is a ValueError
        typer.echo(f"cannot import {file}: {err}", err=True)
        raise typer.Exit(1) from None
    conversion = convert_bundle(objects)
    counts = conversion_counts(file.name, conversion)
    if out is not None:
        counts["written"] = [str(path) for path in write_bodies(conversion, out)]
    if not as_json:
        print_conversion(counts)
        for path in counts.get("written", []):
            typer.echo(f"wrote {path}")
    if submit:
        client = make_client(url, api_key, api_secret, token)

        async def send() -> dict[str, Any]:
            async with client:
                return await client.submit_stix(raw, idempotency_key=file_key(raw, fresh_keys))

        try:
            answer = asyncio.run(send())
        except StixRefused as err:
            counts["submitted"] = {"error": err.body}
            typer.echo(f"the front refused {file.name}: {err}", err=True)
            if as_json:
                typer.echo(json.dumps(counts))
            raise typer.Exit(1) from None
        except SubmitError as err:
            typer.echo(f"submission stopped: {err}", err=True)
            raise typer.Exit(1) from None
        counts["submitted"] = answer
        if not as_json:
            typer.echo(
                f"submitted: job {answer.get('jobID')}, {answer.get('accepted')} items "
                f"({answer.get('entities')} entities, {answer.get('associations')} "
                "associations)"
            )
    if as_json:
        typer.echo(json.dumps(counts))
