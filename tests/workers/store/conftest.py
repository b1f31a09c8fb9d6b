"""The ``store`` fixture: every test of the contract suite runs on each implementation.

The embedded store (a fresh file per test) and MongoDB (the server of ``mongodb_url``: SecantusDB
started for the session unless ``MONGODB_URL`` names one; a fresh database per test, dropped
afterwards). The factories are those of ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest

from tests.backends import StoreFactory
from workers.store.base import Store


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """A started store of each implementation in turn, removed after the test."""
    return await store_factory()
