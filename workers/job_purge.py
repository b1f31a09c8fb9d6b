"""Expired jobs removed on a schedule (SPEC §5: jobs expire after ``INGEST_JOB_TTL``).

MongoDB removes them by itself (TTL indexes); the embedded store has no such thing, so every
worker process runs a ``JobPurger``: every ``interval`` seconds it asks the store to remove the
jobs created more than ``job_ttl`` seconds ago, with their item outcomes and waiting items.
The store does that in short transactions (``logic.PURGE_CHUNK_JOBS`` jobs each), so batch
writes are not held up behind a large purge. Several processes purging the same store is
harmless: a job is removed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from workers.ground.errors import TransientError
from workers.ground.logs import get_logger
from workers.store.base import Store
from workers.store.logic import jobs_visible_since

__all__ = ["JobPurger"]

log = get_logger(__name__)


class JobPurger:
    """Purges the jobs of ``store`` older than ``job_ttl`` every ``interval`` seconds, the first
    time right after ``start``. A store that cannot be reached is tried again next time."""

    def __init__(
        self,
        store: Store,
        *,
        job_ttl: float,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self._store = store
        self._job_ttl = job_ttl
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="job-purger")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def purge_once(self) -> int:
        """Remove the expired jobs now; how many were removed."""
        purged = await self._store.purge_expired_jobs(
            jobs_visible_since(self._clock(), self._job_ttl)
        )
        if purged:
            log.info("jobs.purged", jobs=purged)
        return purged

    async def _run(self) -> None:
        while True:
            try:
                await self.purge_once()
            except TransientError as exc:
                log.warning("jobs.purge_failed", error=str(exc))
            except Exception:  # a bug must not end the schedule, nor the worker
                log.exception("jobs.purge_crashed")
            await asyncio.sleep(self._interval)
