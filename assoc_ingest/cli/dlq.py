"""``assoc-ingest dlq``: inspect and replay the dead-letter queue of the RabbitMQ broker.

These commands need ``AMQP_URL``: the in-process memory queue of another process cannot be
reached from here. The topology comes from ``INGEST_TOPOLOGY_NAME`` (default ``ingest``).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from assoc_ingest.cli.admin import JsonOption, load_settings, print_json, print_table, run
from assoc_ingest.cli.app import app
from workers.backends import queue_session
from workers.queue.base import DeadLetter, Topology

dlq_app = typer.Typer(
    name="dlq",
    help="Inspect and replay dead letters (needs AMQP_URL).",
    no_args_is_help=True,
)
app.add_typer(dlq_app)

PREVIEW_CHARS = 60


def _jsonable(value: Any) -> Any:
    """A header value as JSON can carry it (AMQP tables hold bytes, datetimes, nested lists)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def dead_letter_summary(letter: DeadLetter) -> dict[str, object]:
    """A dead letter for ``--json``: ``body`` as text when it is UTF-8, else ``bodyBase64``."""
    summary: dict[str, object] = {
        "messageID": letter.message_id,
        "reason": letter.reason,
        "bytes": len(letter.body),
    }
    try:
        summary["body"] = letter.body.decode("utf-8")
    except UnicodeDecodeError:
        summary["bodyBase64"] = base64.b64encode(letter.body).decode("ascii")
    summary["headers"] = _jsonable(dict(letter.headers))
    return summary


def _preview(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").replace("\n", " ")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


LimitOption = Annotated[int, typer.Option("--limit", min=1, help="At most this many messages.")]


@dlq_app.command("list")
def list_dead_letters(limit: LimitOption = 100, as_json: JsonOption = False) -> None:
    """Show dead letters, oldest first, without removing them."""
    settings = load_settings(None)

    async def fetch() -> list[DeadLetter]:
        async with queue_session(settings, memory_queue_ok=False) as queue:
            return await queue.dead_letters(limit)

    letters = run(fetch())
    if as_json:
        print_json([dead_letter_summary(letter) for letter in letters])
        return
    if not letters:
        typer.echo(f"no dead letters in {Topology.from_settings(settings).dead_queue}")
        return
    rows = [
        [letter.message_id or "-", letter.reason, str(len(letter.body)), _preview(letter.body)]
        for letter in letters
    ]
    print_table(["MESSAGE ID", "REASON", "BYTES", "BODY"], rows)


@dlq_app.command("replay")
def replay_dead_letters(limit: LimitOption = 1000, as_json: JsonOption = False) -> None:
    """Move dead letters back to the work queue, oldest first, each removed from the
    dead-letter queue only once the broker confirmed it on the work queue."""
    settings = load_settings(None)
    topology = Topology.from_settings(settings)

    async def replay() -> int:
        async with queue_session(settings, memory_queue_ok=False) as queue:
            return await queue.replay_dead_letters(limit)

    moved = run(replay())
    if as_json:
        print_json({"replayed": moved})
        return
    typer.echo(f"replayed {moved} dead letter(s): {topology.dead_queue} -> {topology.work_queue}")
