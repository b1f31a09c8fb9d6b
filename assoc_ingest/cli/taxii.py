"""``assoc-ingest taxii poll URL --collection ID``: read what a TAXII 2.1 collection added.

Without ``--submit`` the new objects are read and accounted for (as ``import stix`` does) and
nothing is remembered. With ``--submit`` each page is sent to ``POST /stix`` as one job, with
the objects its references need (from earlier pages, or fetched by ID), under an
``Idempotency-Key`` derived from the page's objects; once the front acknowledged a page, the
state file remembers where it ended, so a re-run fetches only what was added since.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from assoc_ingest.cli.app import app
from assoc_ingest.cli.submit import (
    ApiKeyOption,
    ApiSecretOption,
    JsonOption,
    TokenOption,
    UrlOption,
    make_client,
)
from assoc_ingest.client import IngestClient, StixRefused, SubmitError
from assoc_ingest.taxii import (
    DEFAULT_LIMIT,
    Collection,
    Context,
    Page,
    PollState,
    TaxiiError,
    TaxiiPoller,
    with_references,
)
from schemas.stix import convert_bundle

taxii_app = typer.Typer(help="Poll TAXII 2.1 collections into the pipeline.", no_args_is_help=True)
app.add_typer(taxii_app, name="taxii")


def default_state_file() -> Path:
    """``$XDG_STATE_HOME/assoc-ingest/taxii-state.json`` (``~/.local/state`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "assoc-ingest" / "taxii-state.json"


def page_key(collection: Collection, page: Page) -> str:
    """The ``Idempotency-Key`` of a page: the same objects, the same key."""
    digest = hashlib.sha256(collection.objects_url.encode())
    for obj in sorted(page.objects, key=lambda o: str(o.get("id"))):
        version = obj.get("modified") or obj.get("created") or ""
        digest.update(f"\x1f{obj.get('id')}\x1e{version}".encode())
    return f"taxii-{digest.hexdigest()}"


async def _submit(client: IngestClient, sent: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The front's answer to a page: a 202, or the 400 of a page of which nothing is
    represented (accounted for like any page: it is no reason to stop)."""
    try:
        return await client.submit_stix(orjson.dumps(sent), idempotency_key=key)
    except StixRefused as refused:
        body = refused.body if isinstance(refused.body, dict) else {}
        if refused.status == 400 and body.get("error", {}).get("code") == "no_valid_items":
            rejected = body.get("rejected")
            rejected = rejected if isinstance(rejected, list) else []
            return {
                "accepted": 0,
                "rejected": rejected,
                "objects": {"notRepresented": len(rejected)},
            }
        raise


async def _poll(
    url: str,
    collection_id: str,
    *,
    user: str | None,
    password: str | None,
    state: PollState,
    limit: int,
    client: IngestClient | None,
    quiet: bool,
) -> dict[str, Any]:
    summary: dict[str, Any] = {"pages": 0, "objects": 0, "jobs": [], "accepted": 0}
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    context = Context()
    async with TaxiiPoller(user=user, password=password) as poller:
        collection = await poller.collection(url, collection_id)
        after = state.added_after(collection)
        summary.update(collection=collection.id, addedAfter=after)
        async for page in poller.pages(collection, added_after=after, limit=limit):
            summary["pages"] += 1
            summary["objects"] += len(page.objects)
            context.remember(page.objects)
            if page.objects:
                sent = await with_references(poller, collection, page.objects, context)
                if client is None:
                    conversion = convert_bundle(sent)
                    counts = conversion.counts()
                    outcomes.update({k: v for k, v in counts.items() if k != "total"})
                    reasons.update(conversion.reasons())
                else:
                    answer = await _submit(client, sent, page_key(collection, page))
                    if answer.get("jobID"):
                        summary["jobs"].append(answer["jobID"])
                    summary["accepted"] += int(answer.get("accepted", 0))
                    objects = answer.get("objects") or {}
                    outcomes.update({k: int(v) for k, v in objects.items() if k != "total"})
                    reasons.update(
                        str(entry.get("error", {}).get("code"))
                        for entry in answer.get("rejected") or ()
                        if isinstance(entry, dict)
                    )
            if client is not None and page.added_last:
                state.advance(collection, page.added_last)
                summary["addedAfterNext"] = page.added_last
            if not quiet:
                typer.echo(
                    f"page {summary['pages']}: {len(page.objects)} objects"
                    + (f", job {summary['jobs'][-1]}" if client and summary["jobs"] else "")
                )
    summary["outcomes"] = dict(outcomes)
    summary["notRepresented"] = dict(reasons.most_common())
    return summary


@taxii_app.command("poll")
def poll_command(
    url: Annotated[str, typer.Argument(help="TAXII 2.1 discovery URL (.../taxii2/) or API root")],
    collection: Annotated[str, typer.Option("--collection", help="collection ID (or title)")],
    user: Annotated[
        str | None, typer.Option("--user", envvar="TAXII_USER", help="TAXII user (basic auth)")
    ] = None,
    password: Annotated[
        str | None, typer.Option("--password", envvar="TAXII_PASSWORD", help="TAXII password")
    ] = None,
    submit: Annotated[
        bool, typer.Option("--submit", help="send each page to --url and remember the poll")
    ] = False,
    state_file: Annotated[
        Path | None,
        typer.Option("--state", dir_okay=False, help="state file [default: XDG state dir]"),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="objects per page to ask for")
    ] = DEFAULT_LIMIT,
    front: UrlOption = None,
    api_key: ApiKeyOption = None,
    api_secret: ApiSecretOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read what COLLECTION of the TAXII server at URL added since the last --submit poll.

    Exits 1 when the server cannot be polled or the front refuses a page; the state then
    ends at the last page the front acknowledged.
    """
    client = make_client(front, api_key, api_secret, token) if submit else None
    try:
        state = PollState(state_file or default_state_file())

        async def run() -> dict[str, Any]:
            if client is None:
                return await _poll(
                    url, collection, user=user, password=password, state=state,
                    limit=limit, client=None, quiet=as_json,
                )  # fmt: skip
            async with client:
                return await _poll(
                    url, collection, user=user, password=password, state=state,
                    limit=limit, client=client, quiet=as_json,
                )  # fmt: skip

        summary = asyncio.run(run())
    except TaxiiError as err:
        typer.echo(f"cannot poll {url}: {err}", err=True)
        raise typer.Exit(1) from None
    except SubmitError as err:
        typer.echo(f"submission stopped: {err}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(summary))
        return
    outcomes = ", ".join(f"{count} {name}" for name, count in summary["outcomes"].items())
    typer.echo(
        f"{summary['objects']} new objects in {summary['pages']} pages"
        + (f" ({outcomes})" if outcomes else "")
        + (f"; {len(summary['jobs'])} jobs, {summary['accepted']} items queued" if submit else "")
    )
