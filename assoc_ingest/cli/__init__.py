"""The ``assoc-ingest`` command: the only entry point users need.

Each module of this package registers its commands on ``app`` when imported; importing them
here is what makes them part of the command.
"""

from __future__ import annotations

from assoc_ingest.cli import (  # noqa: F401  (each registers its commands)
    dlq,
    importer,
    jobs,
    keys,
    serve,
    submit,
    taxii,
    types,
)
from assoc_ingest.cli.app import app

__all__ = ["app"]
