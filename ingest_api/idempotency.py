"""``Idempotency-Key`` on writes (SPEC §3): a retried request gets its first job, processed once.

A write that carries the header is checked as usual first (a 4xx reserves nothing). Then, before
anything is published, the front reserves ``(caller, key)`` in the store with a new job ID and
the SHA-256 digest of the request (method, path and body bytes), so every front of the
deployment, and a front restarted since, sees the same reservation:

- first use of the key in ``INGEST_IDEMPOTENCY_WINDOW``: the job is published under the new ID;
- the key again with the same digest: the answer names the first job. If the store already
  knows that job (its header is registered after the broker's confirm, or written by a worker),
  nothing is published; otherwise the first attempt may have ended in a 503, a lost confirm or
  a crash of its front, so the items are published again under the *same* job ID, and the
  workers' per-item outcome records ``(job, index)`` make the second copy change nothing;
- the key again with another digest: 422 ``idempotency_key_reused``.

A store that cannot be reached is a 503 ``store_unavailable``: without the reservation the
promise cannot be kept, and the client retries with the same key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from ingest_api.auth import PRINCIPAL
from ingest_api.errors import ApiError, store_errors
from ingest_api.state import SETTINGS, STORE
from schemas import new_job_id
from workers.ground import metrics
from workers.ground.logs import note
from workers.store.records import KeyReservation

__all__ = [
    "HEADER",
    "KEY_PATTERN",
    "REPLAYED_HEADER",
    "JobChoice",
    "body_digest",
    "checked_key",
    "choose_job",
    "choose_keyed_job",
    "idempotency_key",
    "new_job",
    "request_digest",
    "whole_body_digest",
]

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
"""Set to ``true`` on the answer to a request whose key was used before."""

KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
"""1 to 255 visible ASCII characters."""
_KEY = re.compile(KEY_PATTERN)


@dataclass(frozen=True, slots=True)
class JobChoice:
    """The job a write goes into."""

    job_id: str
    publish: bool
    """False when the broker already took this job's message: answer without sending it."""
    replayed: bool
    """The key was used before: the answer is the first request's job."""


def new_job() -> JobChoice:
    """A new job, sent now: what ``choose_job`` gives a write without a key."""
    return JobChoice(new_job_id(), publish=True, replayed=False)


def idempotency_key(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key``, None without one; 400 ``invalid_idempotency_key``
    when it is not 1-255 visible ASCII characters or is sent more than once."""
    return checked_key(request.headers.getall(HEADER, ()))


def checked_key(values: Sequence[str]) -> str | None:
    """The key of a request that sent the ``Idempotency-Key`` header ``values`` (see
    ``idempotency_key``)."""
    if not values:
        return None
    if len(values) > 1 or not _KEY.match(values[0]):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "The Idempotency-Key header must be sent once, as 1 to 255 visible ASCII characters.",
        )
    return values[0]


def request_digest(request: web.Request) -> hashlib._Hash:
    """A SHA-256 over the request's method and path, to be fed the body bytes as they are read
    (the digest compared when a key is used again)."""
    return _digest_of(request.method, request.path)


def _digest_of(method: str, path: str) -> hashlib._Hash:
    return hashlib.sha256(f"{method} {path}\n".encode())


async def whole_body_digest(request: web.Request) -> str:
    """``request_digest`` of a request whose body was read whole (aiohttp keeps it)."""
    return body_digest(request.method, request.path, await request.read())


def body_digest(method: str, path: str, body: bytes) -> str:
    """``whole_body_digest`` of a request with this method, path and body."""
    digest = _digest_of(method, path)
    digest.update(body)
    return digest.hexdigest()


async def choose_job(request: web.Request, key: str | None, digest: str, now: float) -> JobChoice:
    """The job of a checked write (see the module docstring): a new one when ``key`` is None."""
    if key is None:
        return new_job()
    return await choose_keyed_job(request.app, request[PRINCIPAL].user_id, key, digest, now)


async def choose_keyed_job(
    app: web.Application, user_id: str, key: str, digest: str, now: float
) -> JobChoice:
    """``choose_job`` of a write with ``key`` by the caller ``user_id``."""
    wanted = KeyReservation(
        user=user_id,
        key=key,
        digest=digest,
        job_id=new_job_id(),
        created_at=now,
    )
    window = app[SETTINGS].idempotency_window
    with store_errors():
        reserved = await app[STORE].reserve_idempotency_key(wanted, window)
    held = reserved.reservation
    if held.digest != digest:
        metrics.IDEMPOTENCY_KEYS.labels("reused").inc()
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"This Idempotency-Key was used for another request in the last {window:g} seconds; "
            "send a new request with a new key.",
        )
    if reserved.new:
        return JobChoice(held.job_id, publish=True, replayed=False)
    result = "replayed" if reserved.job_known else "republished"
    metrics.IDEMPOTENCY_KEYS.labels(result).inc()
    note(replayed=True, published_again=not reserved.job_known)
    return JobChoice(held.job_id, publish=not reserved.job_known, replayed=True)
