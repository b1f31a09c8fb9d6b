"""Publishes the work queue's depth as the ``ingest_queue_depth_messages`` gauge.

Dashboards and alerts (``deploy/``) watch that gauge; KEDA reads the broker directly. Any
process holding a ``JobQueue`` can run the sampler; a failed sample leaves the last value and is
retried at the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib

from assoc_ingest import metrics
from assoc_ingest.errors import TransientError
from workers.queue.base import JobQueue

DEFAULT_INTERVAL = 5.0


class QueueDepthSampler:
    def __init__(self, queue: JobQueue, interval: float = DEFAULT_INTERVAL) -> None:
        self._queue = queue
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        """Read the depth once and set the gauge (skipped while the broker is unavailable)."""
        with contextlib.suppress(TransientError):
            metrics.QUEUE_DEPTH.set(await self._queue.depth())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="queue-depth")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self._interval)
