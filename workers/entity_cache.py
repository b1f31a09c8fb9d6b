"""A bounded, least-recently-used set of entity IDs known to exist.

Entities are never deleted, so an ID once seen in the store stays valid: the cache only saves
store reads, it can never make a worker accept an association it should not. Hot IDs (a feed's
infrastructure that every association points at) stay; cold ones fall out first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class EntityCache:
    """At most ``max_size`` entity IDs, evicting the least recently used; ``0`` disables it."""

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self._max_size = max_size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._ids

    @property
    def max_size(self) -> int:
        return self._max_size

    def missing(self, ids: Iterable[str]) -> set[str]:
        """The IDs of ``ids`` not in the cache; the ones that are count as just used."""
        absent: set[str] = set()
        for entity_id in ids:
            if entity_id in self._ids:
                self._ids.move_to_end(entity_id)
            else:
                absent.add(entity_id)
        return absent

    def add(self, ids: Iterable[str]) -> None:
        """Remember ``ids`` as existing, evicting the least recently used beyond the bound."""
        if self._max_size == 0:
            return
        for entity_id in ids:
            self._ids[entity_id] = None
            self._ids.move_to_end(entity_id)
        while len(self._ids) > self._max_size:
            self._ids.popitem(last=False)
