"""What only the MongoDB store promises beyond the contract suite (which runs it too)."""

from __future__ import annotations

import socket

import pytest

from workers.ground.errors import StoreUnavailable
from workers.store.mongo import MongoStore


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_server_makes_the_store_unavailable() -> None:
    store = MongoStore(
        f"mongodb://127.0.0.1:{_closed_port()}/", "unreachable", server_selection_timeout=0.2
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.existing_entity_ids(["domain-" + "0" * 64])
    finally:
        await store.close()
