"""The association rules in force: defaults plus the custom types stored by administrators.

Custom types are added at run time and must reach every front and worker without a restart
(SPEC §2: within 30 s). ``RulesCache`` reloads them from the store in a background task every
``refresh_seconds`` and on demand (``refresh``), keeping the last good rules when the store is
unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

from schemas import DEFAULT_ASSOCIATION_TYPES, AssociationRules, AssociationType, Kind
from workers.ground.errors import TransientError
from workers.ground.logs import get_logger
from workers.store.base import Store
from workers.store.records import CustomTypeRecord

log = get_logger(__name__)


def custom_association_types(records: Iterable[CustomTypeRecord]) -> list[AssociationType]:
    """Stored custom types as ``AssociationType``s. A record naming an unknown kind, or reusing
    a name already taken (compared case-insensitively), is skipped and logged rather than
    breaking every other type."""
    taken = {t.name.casefold() for t in DEFAULT_ASSOCIATION_TYPES}
    types: list[AssociationType] = []
    for record in records:
        if record.name.casefold() in taken:
            log.warning("association_type.skipped", name=record.name, reason="duplicate name")
            continue
        taken.add(record.name.casefold())
        try:
            types.append(
                AssociationType(
                    name=record.name,
                    primary=Kind(record.primary),
                    non_primary=frozenset(Kind(kind) for kind in record.non_primary),
                    file_action=record.file_action,
                    custom=True,
                )
            )
        except ValueError as exc:
            log.warning("association_type.skipped", name=record.name, reason=str(exc))
    return types


def custom_type_record(association_type: AssociationType, created_at: float) -> CustomTypeRecord:
    """A custom ``association_type`` as the store keeps it (``custom_association_types`` reads
    it back), added at ``created_at`` (seconds since the epoch)."""
    return CustomTypeRecord(
        name=association_type.name,
        primary=association_type.primary.value,
        non_primary=tuple(sorted(kind.value for kind in association_type.non_primary)),
        file_action=association_type.file_action,
        created_at=created_at,
    )


class RulesCache:
    """Holds the current ``AssociationRules`` and keeps them fresh.

    ``start`` loads the custom types once (raising ``TransientError`` when the store cannot be
    read, so a process never starts with rules it does not know are complete) and then reloads
    them every ``refresh_seconds`` in the background. ``refresh`` reloads at once; ``stop``
    ends the background task. ``rules`` is always the last successfully loaded set (the
    defaults alone before ``start``).
    """

    def __init__(self, store: Store, refresh_seconds: float) -> None:
        if refresh_seconds <= 0:
            raise ValueError("refresh_seconds must be > 0")
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._rules = AssociationRules()
        self._loaded_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def rules(self) -> AssociationRules:
        return self._rules

    @property
    def loaded_at(self) -> float:
        """Wall-clock time (seconds since the epoch) the rules were last read from the store."""
        return self._loaded_at

    async def start(self) -> None:
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._refresh_forever(), name="rules-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def refresh(self) -> AssociationRules:
        """Reload the custom types now and return the new rules; raises ``TransientError``
        (keeping the previous rules) when the store cannot be read."""
        async with self._lock:
            return await self._load()

    async def refresh_if_loaded_before(self, moment: float) -> bool:
        """Reload unless the rules were read at or after ``moment`` (seconds since the epoch);
        True when reloaded. A worker calls it when an item names a type it does not know: a
        type added before the item was submitted must not be missed for want of a refresh."""
        if self._loaded_at >= moment:
            return False
        async with self._lock:
            if self._loaded_at < moment:  # else another task reloaded while this one waited
                await self._load()
        return True

    async def _load(self) -> AssociationRules:
        started = time.time()
        records = await self._store.list_custom_types()
        self._rules = AssociationRules(custom_association_types(records))
        self._loaded_at = started
        return self._rules

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except TransientError as exc:
                log.warning("association_types.refresh_failed", error=str(exc))
