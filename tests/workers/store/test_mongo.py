"""What only the MongoDB store promises beyond the contract suite (which runs it too)."""

from __future__ import annotations

import socket

import pytest
from pymongo.errors import BulkWriteError, OperationFailure

from workers.ground.errors import StoreUnavailable
from workers.store.mongo import MongoStore
from workers.store.mongo.store import translated_errors


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


@pytest.mark.parametrize(
    "failure",
    [
        OperationFailure("not primary", code=10107),
        OperationFailure("interrupted", code=11602),
        OperationFailure("retry me", code=2, details={"errorLabels": ["RetryableWriteError"]}),
        BulkWriteError(
            {"writeErrors": [{"index": 0, "code": 189, "errmsg": "stepped down"}], "nInserted": 0}
        ),
    ],
    ids=["not_writable_primary", "repl_state_change", "retryable_label", "bulk_stepped_down"],
)
async def test_a_failover_error_of_the_server_makes_the_store_unavailable(
    failure: OperationFailure,
) -> None:
    # Raised as they are, the worker would take them for a failing item and dead-letter it.
    with pytest.raises(StoreUnavailable):
        async with translated_errors():
            raise failure


async def test_an_error_of_the_request_itself_is_not_made_transient() -> None:
    with pytest.raises(OperationFailure):
        async with translated_errors():
            raise OperationFailure("document too large", code=10334)
