"""``workers.entity_cache``: the bounded set of entity IDs a worker knows to exist."""

from __future__ import annotations

from workers.entity_cache import EntityCache


def test_ids_added_are_no_longer_missing() -> None:
    cache = EntityCache(10)
    cache.add(["a", "b"])

    assert cache.missing(["a", "b", "c"]) == {"c"}
    assert "a" in cache and "c" not in cache


def test_the_least_recently_used_id_is_evicted_beyond_the_bound() -> None:
    cache = EntityCache(2)
    cache.add(["a", "b"])
    cache.missing(["a"])  # a lookup counts as a use
    cache.add(["c"])

    assert len(cache) == 2
    assert cache.missing(["a", "b", "c"]) == {"b"}


def test_a_cache_of_size_zero_remembers_nothing() -> None:
    cache = EntityCache(0)
    cache.add(["a"])

    assert cache.missing(["a"]) == {"a"}
    assert len(cache) == 0
