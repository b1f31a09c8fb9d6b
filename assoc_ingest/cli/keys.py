"""``assoc-ingest keys``: create, list and revoke API keys in the store."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from assoc_ingest.cli.admin import (
    DataDirOption,
    JsonOption,
    fail,
    iso_time,
    load_settings,
    print_json,
    print_table,
    run,
)
from assoc_ingest.cli.app import app
from ingest_api.keys import ROLES, new_api_key
from workers.backends import store_session
from workers.store.records import ApiKeyRecord, api_key_status

keys_app = typer.Typer(
    name="keys",
    help="Create, list and revoke API keys (api-key / api-secret credentials).",
    no_args_is_help=True,
)
app.add_typer(keys_app)


def key_summary(record: ApiKeyRecord, now: float) -> dict[str, object]:
    """What may be shown of a stored key: everything but the secret digest."""
    return {
        "apiKey": record.key_id,
        "userID": record.user_id,
        "roles": list(record.roles),
        "groups": list(record.groups),
        "createdAt": iso_time(record.created_at),
        "expiresAt": iso_time(record.expires_at),
        "status": api_key_status(record, now),
    }


@keys_app.command("create")
def create_key(
    user: Annotated[str, typer.Option("--user", help="User ID the key authenticates as.")],
    role: Annotated[
        list[str],
        typer.Option("--role", help=f"Role to grant, repeatable: {', '.join(ROLES)}."),
    ],
    group: Annotated[
        list[str] | None, typer.Option("--group", help="Group of the user, repeatable.")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="Days until the key expires [default: never]."),
    ] = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print its secret: it is shown this once and stored only as a
    digest."""
    settings = load_settings(data_dir)
    now = time.time()
    try:
        record, secret = new_api_key(user, role, group or [], days, now)
    except ValueError as exc:
        fail(str(exc))

    async def put() -> None:
        async with store_session(settings) as store:
            await store.put_api_key(record)

    run(put())
    if as_json:
        print_json({**key_summary(record, now), "apiSecret": secret})
        return
    typer.echo(f"api-key:    {record.key_id}")
    typer.echo(f"api-secret: {secret}")
    typer.echo(
        f"user {record.user_id}, roles {', '.join(record.roles)}, "
        f"expires {iso_time(record.expires_at) or 'never'}"
    )
    typer.echo("The secret is shown only now and cannot be recovered; keep it safe.")


@keys_app.command("list")
def list_keys(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """List API keys (never their secrets or digests), oldest first."""
    settings = load_settings(data_dir)

    async def fetch() -> list[ApiKeyRecord]:
        async with store_session(settings) as store:
            return await store.list_api_keys()

    now = time.time()
    records = sorted(run(fetch()), key=lambda r: (r.created_at, r.key_id))
    summaries = [key_summary(record, now) for record in records]
    if as_json:
        print_json(summaries)
        return
    if not summaries:
        typer.echo("no API keys")
        return
    headers = ["API KEY", "USER", "ROLES", "GROUPS", "EXPIRES", "STATUS"]
    rows = [
        [
            record.key_id,
            record.user_id,
            ",".join(record.roles),
            ",".join(record.groups) or "-",
            iso_time(record.expires_at) or "never",
            api_key_status(record, now),
        ]
        for record in records
    ]
    print_table(headers, rows)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The api-key to revoke.")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke an API key: requests with it are refused from now on (within the front's key
    cache time, INGEST_API_KEY_CACHE_SECONDS)."""
    settings = load_settings(data_dir)

    async def revoke() -> bool:
        async with store_session(settings) as store:
            return await store.revoke_api_key(key_id)

    if not run(revoke()):
        fail(f"no API key {key_id}")
    typer.echo(f"revoked {key_id}")
