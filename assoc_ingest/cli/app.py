"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="assoc-ingest",
    help="Asynchronous ingest pipeline for threat-intelligence associations.",
    no_args_is_help=True,
    add_completion=False,
)
