"""``workers.rules_cache.RulesCache``: custom association types reach a running process."""

from __future__ import annotations

import time

import pytest

from tests.backends import SqliteStoreFactory
from tests.workers.helpers import eventually
from workers.ground.errors import StoreUnavailable
from workers.rules_cache import RulesCache
from workers.store.records import CustomTypeRecord
from workers.store.sqlite import SqliteStore


def custom(
    name: str, primary: str = "Mutex", non_primary: tuple[str, ...] = ("Address",)
) -> CustomTypeRecord:
    return CustomTypeRecord(name, primary, non_primary, False, time.time())


class OutageStore(SqliteStore):
    """The embedded store whose custom types cannot be read while ``down`` is set."""

    down = False

    async def list_custom_types(self) -> list[CustomTypeRecord]:
        if self.down:
            raise StoreUnavailable("the store is down (test)")
        return await super().list_custom_types()


@pytest.fixture
async def store(sqlite_store: SqliteStoreFactory) -> OutageStore:
    return await sqlite_store(kind=OutageStore)


async def test_start_loads_the_stored_custom_types_after_the_defaults(store: OutageStore) -> None:
    await store.put_custom_type(custom("Mutex On Address"))
    cache = RulesCache(store, refresh_seconds=60)
    await cache.start()
    await cache.stop()

    rule = cache.rules.get("mutex on address")
    assert rule is not None and rule.custom and rule.name == "Mutex On Address"
    assert cache.rules.types[-1] is rule
    assert cache.rules.get("File Traffic") is not None


async def test_a_type_added_later_is_picked_up_by_the_background_refresh(
    store: OutageStore,
) -> None:
    cache = RulesCache(store, refresh_seconds=0.1)
    await cache.start()
    try:
        assert cache.rules.get("Mutex On Address") is None
        await store.put_custom_type(custom("Mutex On Address"))
        await eventually(lambda: cache.rules.get("Mutex On Address") is not None)
    finally:
        await cache.stop()

    assert cache.rules.get("Mutex On Address") is not None


async def test_a_removed_type_disappears_on_refresh(store: OutageStore) -> None:
    await store.put_custom_type(custom("Mutex On Address"))
    cache = RulesCache(store, refresh_seconds=60)
    await cache.refresh()
    await store.delete_custom_type("MUTEX ON ADDRESS")

    rules = await cache.refresh()

    assert rules.get("Mutex On Address") is None


async def test_the_last_good_rules_are_kept_while_the_store_is_down(store: OutageStore) -> None:
    await store.put_custom_type(custom("Mutex On Address"))
    cache = RulesCache(store, refresh_seconds=60)
    await cache.refresh()
    store.down = True

    with pytest.raises(StoreUnavailable):
        await cache.refresh()

    assert cache.rules.get("Mutex On Address") is not None


async def test_a_stored_type_with_an_unknown_kind_does_not_hide_the_others(
    store: OutageStore,
) -> None:
    await store.put_custom_type(custom("Broken", primary="Galaxy"))
    await store.put_custom_type(custom("Mutex On Address"))
    cache = RulesCache(store, refresh_seconds=60)

    rules = await cache.refresh()

    assert rules.get("Broken") is None
    assert rules.get("Mutex On Address") is not None


async def test_rules_are_reloaded_only_when_older_than_the_moment_asked_for(
    store: OutageStore,
) -> None:
    cache = RulesCache(store, refresh_seconds=60)
    await cache.refresh()
    loaded = cache.loaded_at

    assert not await cache.refresh_if_loaded_before(loaded - 1)
    await store.put_custom_type(custom("Mutex On Address"))
    assert await cache.refresh_if_loaded_before(time.time() + 1)
    assert cache.rules.get("Mutex On Address") is not None
