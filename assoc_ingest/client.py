"""Async HTTP client of the ingest API: the bulk endpoints and the reads the CLI needs.

``IngestClient.submit_ndjson`` streams an NDJSON file (or any iterable of lines) to
``POST /api/ingest/v1/associations`` or ``/entities`` in chunks, a few chunks in flight at once;
``IngestClient.submit_stix`` sends one STIX bundle (or array of objects) to ``POST /stix``.
A chunk answered ``503``/``429``/``502``/``504`` or lost to a connection error is sent again after
the server's ``Retry-After`` (else an exponential backoff), a bounded number of times. Each
chunk's ``rejected[].index`` is mapped back to the line number of the source.

A front that cannot be reached at all is ``Unreachable`` at once (``check_reachable``, before
anything is sent), or when every attempt of a chunk failed to connect: nothing is counted as
rejected for it. ``get_json`` reads any ``GET`` endpoint (jobs, association types, entities).

Every chunk carries an ``Idempotency-Key`` (SPEC §3) that its retries reuse, so a chunk whose
first attempt was processed although its answer was a 503 or never came is not processed twice.
The keys are derived from the content of the whole source, the chunk size and the chunk's
position (``chunk_keys``): submitting the same source again, e.g. re-running an import that was
interrupted, sends the same keys, and within the front's window (24 h by default) the chunks
already accepted change nothing. ``fresh_keys`` adds a random part, to submit the same content
again as new requests.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aiohttp
import orjson

Kind = Literal["associations", "entities"]
ProgressCallback = Callable[[int], None]
Source = str | os.PathLike[str] | Iterable[str | bytes]

API_PREFIX = "/api/ingest/v1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_PREFIX = "assoc-ingest"


class SubmitError(Exception):
    """A submission that cannot go on: bad credentials, missing role, unusable arguments."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unreachable(SubmitError):
    """The front cannot be reached: ``cannot reach http://...: connection refused``."""


def _connection_problem(err: BaseException) -> str:
    """What went wrong connecting, in a few words."""
    cause = getattr(err, "os_error", None) or err.__cause__ or err
    number = getattr(cause, "errno", None)
    if number == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(err, TimeoutError) or isinstance(cause, TimeoutError):
        return "no answer in time"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return str(err) or err.__class__.__name__


@dataclass
class SubmitSummary:
    """Outcome of a submission as the front answered it.

    ``accepted`` counts the items the front queued. ``rejected`` lists ``(line number, error)``
    in line order, 1-based over the source including blank lines, ``error`` being the front's
    ``{"code", "message"}`` object (or ``{"code": "not_submitted", ...}`` for a chunk that could
    not be delivered after every attempt). ``job_ids`` lists the job of each chunk in order.
    """

    accepted: int = 0
    rejected: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    job_lines: dict[str, list[int]] = field(default_factory=dict)
    """Per job, the source line number of each item index (index i -> ``job_lines[job][i]``)."""


@dataclass
class _ChunkResult:
    accepted: int = 0
    rejected: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    job_id: str | None = None
    lines: list[int] = field(default_factory=list)


_Chunk = list[tuple[int, bytes]]


def _lines(source: Source) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of the non-blank lines of a file or an iterable of lines."""
    if isinstance(source, str | os.PathLike):
        with Path(source).open("rb") as handle:
            yield from _numbered(handle)
    else:
        yield from _numbered(source)


def _numbered(lines: Iterable[str | bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(lines, start=1):
        raw = line.encode() if isinstance(line, str) else line
        raw = raw.strip()
        if raw:
            yield number, raw


def _chunks(source: Source, size: int) -> Iterator[_Chunk]:
    chunk: _Chunk = []
    for item in _lines(source):
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def source_digest(source: Source) -> tuple[str, Source]:
    """The SHA-256 of the non-blank lines of ``source``, and a source to read them again from
    (a path is read twice; other iterables are kept in memory)."""
    if not isinstance(source, str | os.PathLike):
        source = list(source)
    digest = hashlib.sha256()
    for _, line in _lines(source):
        digest.update(line)
        digest.update(b"\n")
    return digest.hexdigest(), source


def chunk_keys(kind: Kind, digest: str, chunk_items: int, salt: str = "") -> Callable[[int], str]:
    """The ``Idempotency-Key`` of the chunk at each position of a source whose lines have the
    SHA-256 ``digest``, sent to ``kind`` in chunks of ``chunk_items``: the same for the same
    content, kind and chunk size (and ``salt``), different otherwise."""
    run = hashlib.sha256(f"{kind}\0{chunk_items}\0{salt}\0{digest}".encode()).hexdigest()[:40]
    return lambda position: f"{KEY_PREFIX}-{run}-{position}"


def retry_after_seconds(value: str | None, default: float, limit: float = 60.0) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date), within ``limit``."""
    if not value:
        return min(default, limit)
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return min(default, limit)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, limit))


def _error_of(body: Any, status: int) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return dict(body["error"])
    return {"code": f"http_{status}", "message": f"the front answered HTTP {status}"}


class IngestClient:
    """Client of one ingest front; use as ``async with IngestClient(url, ...) as client``.

    Authenticates with ``api_key`` + ``api_secret`` or with a Bearer ``token`` (not both).
    ``max_attempts`` bounds the sends of one chunk; ``sleep`` waits between attempts.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        token: str | None = None,
        max_attempts: int = 6,
        backoff: float = 0.5,
        timeout: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if token and (api_key or api_secret):
            raise SubmitError("give either an API key and secret or a token, not both")
        if bool(api_key) != bool(api_secret):
            raise SubmitError("an API key needs its secret (and a secret its key)")
        for what, value in (("API key", api_key), ("API secret", api_secret), ("token", token)):
            if value and not value.isprintable():
                raise SubmitError(f"the {what} holds a line break or another control character")
        base = base_url.rstrip("/")
        self._base = base if base.endswith(API_PREFIX) else base + API_PREFIX
        self.origin = self._base.removesuffix(API_PREFIX)
        self._headers: dict[str, str] = {}
        if api_key and api_secret:
            self._headers = {"api-key": api_key, "api-secret": api_secret}
        elif token:
            self._headers = {"Authorization": f"Bearer {token}"}
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> IngestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def check_reachable(self, timeout: float = 5.0) -> None:
        """Raise ``Unreachable`` unless the front answers ``GET /healthz`` (one attempt)."""
        try:
            async with self._http().get(
                self.origin + "/healthz", timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                await response.read()
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise Unreachable(f"cannot reach {self.origin}: {_connection_problem(err)}") from None

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The JSON answer of ``GET <base>/<path>`` (``path`` below ``/api/ingest/v1``).

        Raises ``SubmitError`` with the front's message (and ``status``) for any non-2xx
        answer, ``Unreachable`` when the front cannot be reached.
        """
        url = f"{self._base}/{path.lstrip('/')}"
        try:
            async with self._http().get(url, params=params) as response:
                status = response.status
                parsed = _parse(await response.read())
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise Unreachable(f"cannot reach {self.origin}: {_connection_problem(err)}") from None
        if not 200 <= status < 300:
            error = _error_of(parsed, status)
            raise SubmitError(f"HTTP {status}: {error.get('message', '')}", status)
        return parsed

    async def submit_ndjson(
        self,
        source: Source,
        kind: Kind,
        *,
        chunk_items: int = 1000,
        concurrency: int = 4,
        progress: ProgressCallback | None = None,
        fresh_keys: bool = False,
    ) -> SubmitSummary:
        """Send every non-blank line of ``source`` (a path, or lines) to ``POST /<kind>``.

        Lines go in chunks of ``chunk_items`` as ``application/x-ndjson``, at most
        ``concurrency`` chunks in flight, each with its ``Idempotency-Key`` (module docstring;
        ``fresh_keys`` makes them new). ``progress`` is called with the number of lines of each
        finished chunk. Raises ``SubmitError`` on 401/403 (nothing more is sent), ``Unreachable``
        when the front cannot be reached, and ``OSError`` when the file cannot be read.
        """
        if chunk_items < 1 or concurrency < 1:
            raise SubmitError("chunk_items and concurrency must be at least 1")
        await self.check_reachable()
        digest, source = source_digest(source)
        key_of = chunk_keys(kind, digest, chunk_items, uuid.uuid4().hex if fresh_keys else "")
        results: dict[int, _ChunkResult] = {}
        slots = asyncio.Semaphore(concurrency)

        async def run(position: int, chunk: _Chunk) -> None:
            try:
                results[position] = await self._send_chunk(kind, chunk, key_of(position))
            finally:
                slots.release()
            if progress is not None:
                progress(len(chunk))

        try:
            async with asyncio.TaskGroup() as group:
                for position, chunk in enumerate(_chunks(source, chunk_items)):
                    await slots.acquire()
                    group.create_task(run(position, chunk))
        except ExceptionGroup as errors:
            # One failure stops the submission; callers get it as such, not wrapped.
            raise errors.exceptions[0] from None
        summary = SubmitSummary()
        for position in sorted(results):
            result = results[position]
            summary.accepted += result.accepted
            summary.rejected.extend(result.rejected)
            if result.job_id:
                summary.job_ids.append(result.job_id)
                summary.job_lines[result.job_id] = result.lines
        summary.rejected.sort(key=lambda item: item[0])
        return summary

    async def submit_stix(
        self, document: bytes, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Send a STIX bundle (or JSON array of objects) to ``POST /stix`` as one job; the
        202 answer (``jobID``, ``accepted``, ``objects``, ``rejected``...).

        A 429/502/503/504 or a lost connection is retried after ``Retry-After`` (else an
        exponential backoff) with the same ``idempotency_key``; raises ``StixRefused`` on any
        other answer (``body`` holds it) and ``SubmitError`` when every attempt failed.
        """
        url = f"{self._base}/stix"
        headers = {"Content-Type": "application/stix+json;version=2.1"}
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        problem = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            delay = self._backoff * 2 ** (attempt - 1)
            try:
                async with self._http().post(url, data=document, headers=headers) as response:
                    status = response.status
                    raw = await response.read()
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientConnectionError, TimeoutError) as err:
                problem = f"connection failed: {err.__class__.__name__}: {err}"
            else:
                parsed = _parse(raw)
                if status == 202 and isinstance(parsed, dict):
                    return parsed
                if status not in RETRY_STATUSES:
                    message = _error_of(parsed, status).get("message", f"HTTP {status}")
                    raise StixRefused(f"HTTP {status}: {message}", status, parsed)
                problem = f"HTTP {status}"
                delay = retry_after_seconds(retry_after, delay)
            if attempt < self._max_attempts:
                await self._sleep(delay)
        raise SubmitError(f"not accepted after {self._max_attempts} attempts ({problem})")

    async def _send_chunk(self, kind: Kind, chunk: _Chunk, key: str) -> _ChunkResult:
        """POST one chunk, again on a retryable answer, always with the same ``key``."""
        body = b"\n".join(line for _, line in chunk) + b"\n"
        url = f"{self._base}/{kind}"
        headers = {"Content-Type": "application/x-ndjson", IDEMPOTENCY_HEADER: key}
        problem = "no attempt made"
        unreachable = True
        for attempt in range(1, self._max_attempts + 1):
            delay = self._backoff * 2 ** (attempt - 1)
            try:
                async with self._http().post(url, data=body, headers=headers) as response:
                    status = response.status
                    raw = await response.read()
                    retry_after = response.headers.get("Retry-After")
            except aiohttp.ClientConnectorError as err:
                problem = _connection_problem(err)
            except (aiohttp.ClientConnectionError, TimeoutError) as err:
                unreachable = False
                problem = f"connection failed: {_connection_problem(err)}"
            else:
                unreachable = False
                parsed = _parse(raw)
                if status in (200, 201, 202):
                    return _accepted(chunk, parsed)
                if status in (401, 403):
                    message = _error_of(parsed, status).get("message", "not authorised")
                    raise SubmitError(f"HTTP {status}: {message}", status)
                if status == 400 and isinstance(parsed, dict) and parsed.get("rejected"):
                    # Every item was invalid: the front lists each one's error, as on a 202.
                    return _accepted(chunk, {**parsed, "accepted": 0, "jobID": None})
                if status not in RETRY_STATUSES:
                    error = _error_of(parsed, status)
                    return _ChunkResult(rejected=[(number, error) for number, _ in chunk])
                problem = f"HTTP {status}"
                delay = retry_after_seconds(retry_after, delay)
            if attempt < self._max_attempts:
                await self._sleep(delay)
        if unreachable:  # never connected: the front is gone, not the items at fault
            raise Unreachable(f"cannot reach {self.origin}: {problem}")
        error = {
            "code": "not_submitted",
            "message": f"not accepted after {self._max_attempts} attempts ({problem})",
        }
        return _ChunkResult(rejected=[(number, error) for number, _ in chunk])


class StixRefused(SubmitError):
    """``POST /stix`` refused the bundle for good (a 4xx): ``body`` is the front's answer."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message, status)
        self.body = body


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _accepted(chunk: _Chunk, body: Any) -> _ChunkResult:
    body = body if isinstance(body, dict) else {}
    rejected: list[tuple[int, dict[str, Any]]] = []
    for item in body.get("rejected") or []:
        index = item.get("index") if isinstance(item, dict) else None
        if isinstance(index, int) and 0 <= index < len(chunk):
            error = item.get("error")
            rejected.append((chunk[index][0], error if isinstance(error, dict) else {}))
    accepted = body.get("accepted")
    if not isinstance(accepted, int):
        accepted = len(chunk) - len(rejected)
    job_id = body.get("jobID")
    return _ChunkResult(
        accepted,
        rejected,
        job_id if isinstance(job_id, str) else None,
        [number for number, _ in chunk],
    )
