"""The chaos scenario's client: streams the workload's bulk requests at a steady pace and
records every answer; afterwards polls the acknowledged jobs until they are finished.

Each planned request is one *logical request* with its own ``Idempotency-Key``, and the client
retries it as ``assoc-ingest submit`` does: a 503, a connection error (the front was killed) or
a timeout is sent again with the same key and the same bytes after the ``Retry-After`` it was
given (capped), for up to ``retry_for`` seconds. A logical request answered 202 is acknowledged
(its job ID and items are recorded); one still refused when that time is up is *refused*, and
the stream goes on with new items. Every ``repeat_every``-th acknowledged request is sent once
more with its key, as a client that lost the 202 would: that answer must name the same job.
Associations not yet sent whose entity was refused are left out of later requests, since they
could only wait for an entity that will never come.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.chaos_workload import Step, Workload

__all__ = ["IDEMPOTENCY_HEADER", "Answer", "Submitter", "poll_jobs"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

REFUSED = "refused"
ACKNOWLEDGED = "acknowledged"
WRONG = "wrong"


@dataclass(slots=True)
class Answer:
    """The answer to one logical request (after its retries): ``verdict`` is acknowledged,
    refused or wrong (any other status, or a 202 that did not accept every item: a bug of the
    workload or the front). ``job_ids`` holds the jobID of every 202 it got (the first one and
    that of a deliberate repeat); ``attempts`` counts every send."""

    step: int
    kind: str
    keys: tuple[str, ...]
    verdict: str
    status: int | None
    job_id: str | None
    detail: str
    sent: float
    answered: float
    attempts: int = 1
    job_ids: tuple[str, ...] = ()
    replayed: int = 0
    """202s that said ``Idempotent-Replayed``: the key had been used by an earlier attempt."""


@dataclass
class Submitter:
    """Sends ``workload.steps`` over ``duration`` seconds with ``concurrency`` senders."""

    session: aiohttp.ClientSession
    base: str
    workload: Workload
    duration: float
    concurrency: int = 4
    retry_after_cap: float = 2.0
    retry_for: float = 120.0
    """Seconds a logical request is retried before it counts as refused."""
    repeat_every: int = 5
    """Every n-th acknowledged request is sent once more (0: never)."""
    key_prefix: str = "chaos"
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
            await self._send(index, steps[index])

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

    async def _send(self, index: int, step: Step) -> None:
        """Send one logical request until acknowledged or ``retry_for`` has passed."""
        keys = self._keys(step)
        if not keys:
            return
        body = orjson.dumps(self.workload.body(step, keys))
        headers = {IDEMPOTENCY_HEADER: f"{self.key_prefix}-{index}"}
        url = f"{self.base}/{step.kind}"
        sent = time.monotonic() - self._origin
        attempts = 0
        replayed = 0
        while True:
            attempts += 1
            reply = await self._post(url, body, headers)
            replayed += reply.replayed
            verdict, job_id, detail = _judge(reply.status, reply.data, len(keys))
            timed_out = time.monotonic() - self._origin - sent > self.retry_for
            if verdict != REFUSED or timed_out:
                break
            await asyncio.sleep(reply.pause)
        status = reply.status
        job_ids: tuple[str, ...] = (job_id,) if job_id else ()
        if verdict == ACKNOWLEDGED and self.repeat_every and index % self.repeat_every == 0:
            again = await self._post(url, body, headers)
            attempts += 1
            replayed += again.replayed
            if isinstance(again.data, dict) and again.data.get("jobID"):
                job_ids += (str(again.data["jobID"]),)
        if verdict == REFUSED and step.kind == "entities":
            self.refused_entities.update(keys)
        answered = time.monotonic() - self._origin
        self.answers.append(
            Answer(
                index,
                step.kind,
                keys,
                verdict,
                status,
                job_id,
                detail,
                sent,
                answered,
                attempts,
                job_ids,
                replayed,
            )
        )

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> _Reply:
        """One send and what came back."""
        try:
            async with self.session.post(url, data=body, headers=headers) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After", "1")
                replayed = response.headers.get(REPLAYED_HEADER) == "true"
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return _Reply(None, f"{type(exc).__name__}: {exc}", 1.0, False)
        pause = min(float(retry_after), self.retry_after_cap) if status == 503 else 0.0
        return _Reply(status, data, pause, replayed)


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int | None
    data: Any
    """The parsed body, or what went wrong."""
    pause: float
    """Seconds to wait before a retry."""
    replayed: bool
    """The 202 carried ``Idempotent-Replayed: true``."""


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
