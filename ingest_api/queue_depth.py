"""Publishes the work queue's depth as the ``ingest_queue_depth_messages`` gauge.

Dashboards and alerts (``deploy/``) watch that gauge; KEDA reads the broker directly. Any
process holding a ``JobQueue`` can run the sampler; a failed sample leaves the last value and is
retried at the next tick.
"""

from __future__ import annotations

import asyncio

from workers.ground import metrics
from workers.ground.errors import TransientError
from workers.ground.logs import get_logger
from workers.queue.base import JobQueue

DEFAULT_INTERVAL = 5.0

log = get_logger(__name__)


class QueueDepthSampler:
    def __init__(self, queue: JobQueue, interval: float = DEFAULT_INTERVAL) -> None:
        self._queue = queue
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        """Read the depth once and set the gauge (skipped while the broker is unavailable)."""
        try:
            metrics.QUEUE_DEPTH.set(await self._queue.depth())
        except TransientError as exc:
            log.debug("queue.depth_unavailable", error=str(exc))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="queue-depth")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # The driver may turn the cancellation of a call in flight into its own error.
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # a driver error must not end the sampling for good
                log.warning("queue.depth_failed", exc_info=True)
            await asyncio.sleep(self._interval)
