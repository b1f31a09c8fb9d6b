"""Background, batched registration of accepted jobs (``Store.register_jobs``).

After a 202 the front records the job header so that ``GET /jobs/{id}`` shows it ``queued``
before a worker has touched it. This is never on a request's critical path: ``add`` only
appends to a buffer; one background task writes whatever has gathered, waiting ``linger``
seconds after the first header of a batch so that a busy front writes a few large batches
rather than one small transaction per request (the embedded store pays per transaction, and
nobody waits on this write). Failures are logged and the headers dropped after a few
attempts, which is harmless: workers record the header too when they write the first outcome.
"""

from __future__ import annotations

import asyncio
import contextlib

from workers.ground.errors import IngestError
from workers.ground.logs import get_logger
from workers.store.base import Store
from workers.store.records import JobHeader

__all__ = ["JobRegistry"]

log = get_logger(__name__)


class JobRegistry:
    """Buffers job headers and writes them in batches of at most ``max_batch``.

    At most ``max_pending`` headers wait (the oldest are dropped beyond, with a warning) so a
    store outage cannot grow memory without bound. ``close`` flushes what is pending, giving up
    after ``close_timeout`` seconds.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 1000,
        max_pending: int = 100_000,
        attempts: int = 3,
        close_timeout: float = 5.0,
        linger: float = 0.05,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._attempts = attempts
        self._close_timeout = close_timeout
        self._linger = linger
        self._pending: list[JobHeader] = []
        self._unwritten: dict[str, JobHeader] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, header: JobHeader) -> None:
        """Queue ``header`` for registration; returns at once."""
        self._pending.append(header)
        self._unwritten[header.job_id] = header
        if len(self._pending) > self._max_pending:
            dropped = len(self._pending) - self._max_pending
            for gone in self._pending[:dropped]:
                self._unwritten.pop(gone.job_id, None)
            del self._pending[:dropped]
            log.warning("jobs.registration_dropped", count=dropped)
        self._wakeup.set()

    def unwritten(self, job_id: str) -> JobHeader | None:
        """The header of ``job_id`` when it was accepted here and is not in the store yet, so
        that ``GET /jobs`` shows it ``queued`` right after its 202."""
        return self._unwritten.get(job_id)

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="job-registry")

    async def close(self) -> None:
        """Write what is pending (bounded by ``close_timeout``) and stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(task, self._close_timeout)
        except TimeoutError:
            log.warning("jobs.registration_abandoned", count=len(self._pending))
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._pending) < self._max_batch and not self._closing and self._linger > 0:
                await asyncio.sleep(self._linger)
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            await self._write(batch)

    async def _write(self, batch: list[JobHeader]) -> None:
        try:
            await self._write_with_retries(batch)
        finally:
            for header in batch:
                self._unwritten.pop(header.job_id, None)

    async def _write_with_retries(self, batch: list[JobHeader]) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                await self._store.register_jobs(batch)
                return
            except (IngestError, OSError) as exc:
                log.warning(
                    "jobs.registration_failed", count=len(batch), attempt=attempt, error=str(exc)
                )
                if attempt < self._attempts and not self._closing:
                    await asyncio.sleep(0.5 * attempt)
            except Exception:  # a bug in a store adapter must not kill the registry
                log.exception("jobs.registration_crashed", count=len(batch))
                return
