"""The ``store`` fixture: every test of the contract suite runs on each implementation.

SQLite always (a fresh file per test); MongoDB when ``MONGODB_URL`` is set (a fresh database
per test, dropped afterwards).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from workers.store.base import Store
from workers.store.mongo import MongoStore
from workers.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "store.sqlite3")
        await sqlite.start()
        yield sqlite
        await sqlite.close()
        return
    url: str = request.getfixturevalue("mongodb_url")
    mongo = MongoStore(url, unique_name.replace("-", "_"))
    await mongo.start()
    try:
        yield mongo
    finally:
        await mongo.drop_database()
        await mongo.close()
