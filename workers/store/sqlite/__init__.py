"""The embedded store: one SQLite file in WAL mode; ``sqlite3`` is imported only inside this
folder."""

from workers.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
