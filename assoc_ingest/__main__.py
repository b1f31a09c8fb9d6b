"""``python -m assoc_ingest`` is the ``assoc-ingest`` command."""

from assoc_ingest.cli import app

app()
