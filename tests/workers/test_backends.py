"""``workers.backends``: the settings pick the adapters."""

from __future__ import annotations

from pathlib import Path

from workers.backends import SQLITE_FILE_NAME, open_store
from workers.ground.settings import Settings
from workers.store.mongo import MongoStore
from workers.store.sqlite import SqliteStore


def test_open_store_uses_the_sqlite_file_under_data_dir_without_mongodb(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path, mongodb_url=None))

    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / SQLITE_FILE_NAME


async def test_open_store_uses_mongodb_when_its_url_is_set(tmp_path: Path) -> None:
    store = open_store(
        Settings(data_dir=tmp_path, mongodb_url="mongodb://127.0.0.1:1/", mongodb_database="x")
    )

    assert isinstance(store, MongoStore)
    assert store.database_name == "x"
    await store.close()
