"""``assoc-ingest types``: list the association types, add and remove custom ones.

Fronts and workers reload custom types every ``INGEST_TYPES_REFRESH_SECONDS`` (30 s), so a
change made here is in force everywhere within that time, without a restart.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from assoc_ingest.cli.admin import (
    DataDirOption,
    JsonOption,
    fail,
    load_settings,
    print_json,
    print_table,
    run,
)
from assoc_ingest.cli.app import app
from schemas import DEFAULT_CONTEXT_RELATIONSHIP, AssociationRules, AssociationType, Kind
from schemas.rules import InvalidAssociationType, validate_custom_type
from workers.backends import store_session
from workers.rules_cache import custom_association_types, custom_type_record
from workers.store.records import CustomTypeRecord

types_app = typer.Typer(
    name="types",
    help="List association types; add and remove custom types and File Actions.",
    no_args_is_help=True,
)
app.add_typer(types_app)

KINDS = ", ".join(kind.value for kind in Kind)


def type_summary(association_type: AssociationType) -> dict[str, object]:
    """A type as ``GET /association-types`` shows it."""
    return {
        "name": association_type.name,
        "primary": association_type.primary.value,
        "nonPrimary": sorted(kind.value for kind in association_type.non_primary),
        "fileAction": association_type.file_action,
        "custom": association_type.custom,
    }


@types_app.command("list")
def list_types(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """List the default association types and File Actions, then the custom ones."""
    settings = load_settings(data_dir)

    async def fetch() -> list[CustomTypeRecord]:
        async with store_session(settings) as store:
            return await store.list_custom_types()

    rules = AssociationRules(custom_association_types(run(fetch())))
    if as_json:
        print_json([type_summary(t) for t in rules.types])
        return
    headers = ["NAME", "PRIMARY", "NON-PRIMARY", "FILE ACTION", "CUSTOM"]
    rows = [
        [
            t.name,
            t.primary.value,
            ", ".join(sorted(kind.value for kind in t.non_primary)),
            "yes" if t.file_action else "no",
            "yes" if t.custom else "no",
        ]
        for t in rules.types
    ]
    typer.echo(
        "Context associations: a pair with a context entity (a type with no kind: malware, "
        "malware-family, threat, adversary, cve, ...) at either end takes any relationship "
        f"name except the names below ('{DEFAULT_CONTEXT_RELATIONSHIP}' when none is given)."
    )
    typer.echo("")
    print_table(headers, rows)


@types_app.command("add")
def add_type(
    name: Annotated[str, typer.Argument(help="Name of the new type (unique, any case).")],
    primary: Annotated[str, typer.Option("--primary", help=f"Primary kind: {KINDS}.")],
    non_primary: Annotated[
        list[str], typer.Option("--non-primary", help="Allowed non-primary kind, repeatable.")
    ],
    file_action: Annotated[
        bool, typer.Option("--file-action", help="A File Action (primary must be File).")
    ] = False,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a custom association type or File Action."""
    settings = load_settings(data_dir)

    async def add() -> AssociationType:
        async with store_session(settings) as store:
            rules = AssociationRules(custom_association_types(await store.list_custom_types()))
            try:
                new = validate_custom_type(name, primary, non_primary, file_action, rules)
            except InvalidAssociationType as exc:
                fail(str(exc))
            if not await store.put_custom_type(custom_type_record(new, time.time())):
                fail(f"an association type named {new.name!r} already exists")
            return new

    added = run(add())
    if as_json:
        print_json(type_summary(added))
        return
    kinds = ", ".join(sorted(kind.value for kind in added.non_primary))
    what = "File Action" if added.file_action else "association type"
    typer.echo(f"added {what} {added.name!r}: {added.primary.value} -> {kinds}")
    typer.echo(
        f"{added.name!r} is now a matrix name: context associations can no longer take it "
        "as their relationship name"
    )
    typer.echo(
        f"fronts and workers pick it up within {settings.types_refresh_seconds:g} s "
        "(INGEST_TYPES_REFRESH_SECONDS)"
    )


@types_app.command("remove")
def remove_type(
    name: Annotated[str, typer.Argument(help="Name of the custom type (any case).")],
    data_dir: DataDirOption = None,
) -> None:
    """Remove a custom association type; the defaults cannot be removed."""
    settings = load_settings(data_dir)
    default = AssociationRules().get(name)
    if default is not None:
        fail(f"{default.name!r} is a default association type and cannot be removed")

    async def remove() -> bool:
        async with store_session(settings) as store:
            return await store.delete_custom_type(name.strip())

    if not run(remove()):
        fail(f"no custom association type named {name!r}")
    typer.echo(f"removed {name.strip()!r}")
