"""The base path of the ingest API (SPEC §3).

A module of its own because both sides of the route table need it: ``routes.py`` builds the
paths of the table from it and imports the views, and the views build ``Location`` headers
from it.
"""

from __future__ import annotations

__all__ = ["BASE"]

BASE = "/api/ingest/v1"
