"""Shared helpers of the worker tests: settings, waiting for jobs with a deadline.

Queues and stores come from the factories of ``tests/conftest.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from workers.ground.settings import Settings
from workers.store.base import Store
from workers.store.records import AssociationRecord, Direction, JobStatus


def fast_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings with short waits, so that retries and entity waits take a second or two."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "entity_wait": 1.5,
        "worker_concurrency": 4,
        "worker_prefetch": 8,
        "metrics_port": 0,
        "shutdown_timeout": 5.0,
        "types_refresh_seconds": 60.0,
    }
    values.update(overrides)
    return Settings.model_validate(values)


async def wait_for_job(store: Store, job_id: str, within: float = 15.0) -> JobStatus:
    """The job once every item has an outcome; fails the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    status: JobStatus | None = None
    while time.monotonic() < deadline:
        status = await store.get_job(job_id)
        if status is not None and status.processed >= status.total:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} not done after {within} s: {status}")


async def eventually(condition: Callable[[], Awaitable[bool] | bool], within: float = 5.0) -> None:
    """Wait until ``condition`` holds; fails the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


async def edges_of(store: Store, entity_id: str, direction: Direction) -> list[AssociationRecord]:
    records, _ = await store.list_associations(entity_id, direction=direction, limit=1000)
    return records
