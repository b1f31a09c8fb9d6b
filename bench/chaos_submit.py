"""The chaos scenario's client: streams the workload's bulk requests at a steady pace and
records every answer; afterwards polls the acknowledged jobs until they are finished.

A request answered 202 is acknowledged (its job ID and items are recorded). A 503, a
connection error or a timeout means *refused*: those items are never sent again, the stream
goes on with new items, and the sender pauses for the ``Retry-After`` it was given (capped), as
a well-behaved client would. Associations not yet sent whose entity was refused are left out
of later requests, since they could only wait for an entity that will never come.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.chaos_workload import Step, Workload

__all__ = ["Answer", "Submitter", "poll_jobs"]

REFUSED = "refused"
ACKNOWLEDGED = "acknowledged"
WRONG = "wrong"


@dataclass(slots=True)
class Answer:
    """The answer to one request: ``verdict`` is acknowledged, refused or wrong (any other
    status, or a 202 that did not accept every item: a bug of the workload or the front)."""

    step: int
    kind: str
    keys: tuple[str, ...]
    verdict: str
    status: int | None
    job_id: str | None
    detail: str
    sent: float
    answered: float


@dataclass
class Submitter:
    """Sends ``workload.steps`` over ``duration`` seconds with ``concurrency`` senders."""

    session: aiohttp.ClientSession
    base: str
    workload: Workload
    duration: float
    concurrency: int = 4
    retry_after_cap: float = 2.0
    answers: list[Answer] = field(default_factory=list)
    refused_entities: set[str] = field(default_factory=set)
    left_out: set[str] = field(default_factory=set)
    """Pairs never sent because one of their entities had been refused."""
    _next: int = 0
    _origin: float = 0.0

    async def run(self, origin: float) -> None:
        """Stream every step; ``origin`` is the ``time.monotonic()`` the schedule starts at."""
        self._origin = origin
        await asyncio.gather(*(self._sender() for _ in range(self.concurrency)))

    async def _sender(self) -> None:
        steps = self.workload.steps
        interval = self.duration / max(1, len(steps))
        while self._next < len(steps):
            index = self._next
            self._next += 1
            delay = self._origin + index * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pause = await self._send(index, steps[index])
            if pause:
                await asyncio.sleep(pause)

    def _keys(self, step: Step) -> tuple[str, ...]:
        if step.kind == "entities":
            return step.keys
        keys = []
        for key in step.keys:
            if set(self.workload.ends(key)) & self.refused_entities:
                self.left_out.add(key)
            else:
                keys.append(key)
        return tuple(keys)

    async def _send(self, index: int, step: Step) -> float:
        """POST one step; returns the seconds to pause before the next request."""
        keys = self._keys(step)
        if not keys:
            return 0.0
        body = orjson.dumps(self.workload.body(step, keys))
        sent = time.monotonic() - self._origin
        status: int | None = None
        data: Any = None
        pause = 0.0
        try:
            async with self.session.post(f"{self.base}/{step.kind}", data=body) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After", "1")
                data = await response.json(content_type=None)
            if status == 503:
                pause = min(float(retry_after), self.retry_after_cap)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            data = f"{type(exc).__name__}: {exc}"
            pause = 1.0
        verdict, job_id, detail = _judge(status, data, len(keys))
        if verdict == REFUSED and step.kind == "entities":
            self.refused_entities.update(keys)
        answered = time.monotonic() - self._origin
        self.answers.append(
            Answer(index, step.kind, keys, verdict, status, job_id, detail, sent, answered)
        )
        return pause


def _judge(status: int | None, data: Any, items: int) -> tuple[str, str | None, str]:
    if status is None or status == 503:
        return REFUSED, None, str(data)[:300]
    if status == 202 and isinstance(data, dict) and data.get("message") == ACKNOWLEDGED:
        job_id = str(data.get("jobID"))
        if data.get("accepted") == items and not data.get("rejected"):
            return ACKNOWLEDGED, job_id, ""
        return WRONG, job_id, f"accepted {data.get('accepted')} of {items}: {data.get('rejected')}"
    return WRONG, None, f"HTTP {status}: {str(data)[:300]}"


async def poll_jobs(
    session: aiohttp.ClientSession, base: str, job_ids: list[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """``GET /jobs/{id}`` until every job is ``done`` or ``failed`` or ``timeout`` seconds have
    passed; the last answer (the JSON body, or ``{"httpStatus": n}``) of every job."""
    deadline = time.monotonic() + timeout
    last: dict[str, dict[str, Any]] = {}
    remaining = list(job_ids)
    while remaining:
        still: list[str] = []
        for job in remaining:
            try:
                async with session.get(f"{base}/jobs/{job}") as response:
                    body = await response.json(content_type=None)
                    if response.status != 200 or not isinstance(body, dict):
                        body = {"httpStatus": response.status, "body": body}
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                body = {"httpStatus": None, "body": repr(exc)}
            last[job] = body
            if body.get("status") not in ("done", "failed"):
                still.append(job)
        remaining = still
        if remaining:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    return last
