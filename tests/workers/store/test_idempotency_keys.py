"""The ``Store`` contract for idempotency keys (SPEC §3), run against every implementation."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.backends import MongoStoreFactory, StoreFactory
from tests.workers.store import store_factories as f
from workers.store.base import Store
from workers.store.mongo import MongoStore
from workers.store.records import JobHeader, KeyReservation

WINDOW = 3600.0


def _reservation(
    key: str = "chunk-1", user: str = "alice", digest: str = "d1", at: float | None = None
) -> KeyReservation:
    return KeyReservation(
        user=user,
        key=key,
        digest=digest,
        job_id=str(uuid.uuid4()),
        created_at=time.time() if at is None else at,
    )


def _header(job_id: str) -> JobHeader:
    return JobHeader(job_id, "association", "alice", (), 1, time.time())


async def test_the_first_use_of_a_key_reserves_it_for_a_job_not_yet_known(store: Store) -> None:
    first = _reservation()

    reserved = await store.reserve_idempotency_key(first, WINDOW)

    assert reserved.new is True
    assert reserved.reservation == first
    assert reserved.job_known is False


async def test_the_same_key_within_the_window_answers_the_first_job_and_digest(
    store: Store,
) -> None:
    first = _reservation(at=1000.0)
    await store.reserve_idempotency_key(first, WINDOW)

    again = await store.reserve_idempotency_key(
        _reservation(digest="d2", at=1000.0 + WINDOW - 1), WINDOW
    )

    assert again.new is False
    assert again.reservation == first


async def test_a_key_is_reserved_anew_once_its_window_has_passed(store: Store) -> None:
    await store.reserve_idempotency_key(_reservation(at=1000.0), WINDOW)
    later = _reservation(digest="d2", at=1000.0 + WINDOW)

    reserved = await store.reserve_idempotency_key(later, WINDOW)

    assert reserved.new is True
    assert reserved.reservation == later
    again = await store.reserve_idempotency_key(_reservation(at=1000.0 + WINDOW + 1), WINDOW)
    assert again.reservation == later


async def test_keys_of_different_users_are_independent(store: Store) -> None:
    alice = _reservation(user="alice")
    bob = _reservation(user="bob")

    first = await store.reserve_idempotency_key(alice, WINDOW)
    second = await store.reserve_idempotency_key(bob, WINDOW)

    assert (first.new, second.new) == (True, True)
    assert second.reservation.job_id == bob.job_id != alice.job_id


async def test_the_job_is_known_once_the_front_registered_it(store: Store) -> None:
    first = _reservation()
    await store.reserve_idempotency_key(first, WINDOW)
    await store.register_jobs([_header(first.job_id)])

    again = await store.reserve_idempotency_key(_reservation(), WINDOW)

    assert (again.new, again.job_known) == (False, True)


async def test_the_job_is_known_once_a_worker_wrote_one_of_its_items(store: Store) -> None:
    first = _reservation()
    await store.reserve_idempotency_key(first, WINDOW)
    job = _header(first.job_id)
    url, host = f.entity_id("url", "https://a.example/"), f.entity_id("domain", "a.example")
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, url, host)]))

    again = await store.reserve_idempotency_key(_reservation(), WINDOW)

    assert again.job_known is True


async def _two_fronts(factory: StoreFactory) -> tuple[Store, Store]:
    """Two stores on the same data, as two fronts have (the same file, or the same database)."""
    first = await factory()
    if isinstance(factory, MongoStoreFactory):
        assert isinstance(first, MongoStore)
        return first, await factory(database=first.database_name)
    return first, await factory()  # the embedded store's factory: same name, same file


async def test_concurrent_reservations_of_one_key_on_two_fronts_agree_on_one_job(
    store_factory: StoreFactory,
) -> None:
    two_fronts = await _two_fronts(store_factory)
    attempts = [_reservation() for _ in range(20)]

    results = await asyncio.gather(
        *(two_fronts[i % 2].reserve_idempotency_key(r, WINDOW) for i, r in enumerate(attempts))
    )

    assert len({r.reservation.job_id for r in results}) == 1
    assert sum(r.new for r in results) == 1
