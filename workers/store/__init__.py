"""The store behind the pipeline: MongoDB when configured, else the embedded SQLite file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.store.base import Store

if TYPE_CHECKING:
    from assoc_ingest.settings import Settings

__all__ = ["SQLITE_FILE_NAME", "Store", "open_store"]

SQLITE_FILE_NAME = "assoc-ingest.sqlite3"


def open_store(settings: Settings) -> Store:
    """The store the settings describe, not started yet (call ``await store.start()``):
    ``MongoStore`` when ``settings.mongodb_url`` is set, else ``SqliteStore`` on
    ``settings.data_dir / "assoc-ingest.sqlite3"``."""
    if settings.mongodb_url is not None:
        from workers.store.mongo import MongoStore  # imported only when MongoDB is used

        return MongoStore(
            settings.mongodb_url.get_secret_value(),
            settings.mongodb_database,
            job_ttl=settings.job_ttl,
        )
    from workers.store.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / SQLITE_FILE_NAME, job_ttl=settings.job_ttl)
