"""Reading request bodies: content types, size limits, JSON and streamed NDJSON bulks.

Single writes take ``application/json`` (anything else is a 415). Bulk writes take
``application/x-ndjson`` (also ``application/ndjson``, ``application/jsonl``), streamed and
parsed line by line as the bytes arrive, or ``application/json`` holding either a JSON array
of items or NDJSON lines. An item's index is its 0-based line number in the body, blank lines
included (so that ``rejected[].index`` names the line an editor shows, less one), or its
position in a JSON array; blank lines are no items. Beyond ``max_bytes`` bytes or ``max_items``
items the answer is a 413.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from ingest_api.errors import ApiError

__all__ = [
    "CHUNK_ITEMS",
    "JSON_TYPE",
    "NDJSON_TYPES",
    "BulkChunk",
    "NotJson",
    "invalid_json",
    "iter_bulk_chunks",
    "read_json",
]

JSON_TYPE = "application/json"
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
_CHUNK = 64 * 1024


class Digest(Protocol):
    """A running hash (``hashlib``) fed the body bytes as they are read."""

    def update(self, data: bytes, /) -> None: ...


def _unsupported(expected: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", f"The Content-Type must be {expected}.")


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"The body is larger than {max_bytes} bytes.")


def _check_length(request: web.Request, max_bytes: int) -> None:
    length = request.content_length
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes)


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The parsed JSON body of a single write; 415, 413 or 400 ``invalid_json`` otherwise."""
    # The header as most clients send it spares parsing it.
    if request.headers.get("Content-Type") != JSON_TYPE and request.content_type != JSON_TYPE:
        raise _unsupported(JSON_TYPE)
    _check_length(request, max_bytes)
    body = await request.read()  # bounded by the application's client_max_size
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(exc) from exc


def _lines(data: bytes, first: int = 0) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of ``data`` with their line numbers, counted from ``first``."""
    for number, line in enumerate(data.split(b"\n"), first):
        if line.strip():
            yield number, line


LARGE_ARRAY_BYTES = 1024 * 1024
"""A JSON-array body above this size is parsed one item at a time: parsed whole, a 16 MiB
array of nested entities takes about 160 MB at once."""

_SPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, position: int) -> int:
    """The position of the first character at or after ``position`` that is not JSON space."""
    match = _SPACE.match(text, position)
    return position if match is None else match.end()


def invalid_json(detail: object) -> ApiError:
    """The 400 of a body that is not JSON (``detail``: where, or the parser's error)."""
    return ApiError(400, "invalid_json", f"The body is not valid JSON: {detail}.")


def _whole_array(body: bytes) -> Iterator[Any]:
    """The items of a JSON array parsed at once, each let go as soon as it is handed out."""
    try:
        values = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(exc) from exc
    for position in range(len(values)):
        value, values[position] = values[position], None
        yield value


def _array_items(body: bytes) -> Iterator[Any]:
    """The items of a JSON array parsed one at a time by orjson (so they are read exactly as
    ``_whole_array`` reads them); the standard library's scanner only finds where each ends.
    Any fault, wherever it is, is a 400 ``invalid_json`` as for a body parsed at once."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        yield from _whole_array(body)  # orjson words the error
        return
    scanner = json.JSONDecoder()
    position = _skip_space(text, _skip_space(text, 0) + 1)  # the first item, after "["
    if text.startswith("]", position):
        position += 1
    else:
        while True:
            try:
                _, end = scanner.raw_decode(text, position)
                value = orjson.loads(text[position:end])
            except (ValueError, orjson.JSONDecodeError) as exc:
                raise invalid_json(exc) from exc
            yield value
            position = _skip_space(text, end)
            separator = text[position : position + 1]
            position += 1
            if separator == "]":
                break
            if separator != ",":
                raise invalid_json(f"expected ',' or ']' at character {position - 1}")
            position = _skip_space(text, position)
    if _skip_space(text, position) != len(text):
        raise invalid_json(f"unexpected data after the array at character {position}")


CHUNK_ITEMS = 256
"""Items a bulk body is handed out in at a time (``iter_bulk_chunks``): the caller checks a
chunk, then lets the event loop run other requests before the next one."""


@dataclass(frozen=True, slots=True)
class NotJson:
    """The value of a bulk item whose line could not be parsed: why."""

    message: str


BulkChunk = list[tuple[int, Any]]
"""Items of a bulk body in order, each ``(index, value)``; a ``NotJson`` value is a line that
could not be parsed."""


def _parse_value(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return NotJson(f"Line is not valid JSON: {exc}.")


def _too_many(max_items: int) -> ApiError:
    return ApiError(413, "too_many_items", f"A bulk request may hold at most {max_items} items.")


def _chunks_of(items: Iterator[tuple[int, Any]], size: int, max_items: int) -> Iterator[BulkChunk]:
    """``items`` ``size`` at a time; a 413 at the first item beyond ``max_items``, before
    anything after it is parsed (so a fault further on is not what the answer names)."""
    chunk: BulkChunk = []
    for count, item in enumerate(items, 1):
        if count > max_items:
            raise _too_many(max_items)
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _whole_array_chunks(body: bytes, max_items: int, size: int) -> Iterator[BulkChunk]:
    """The items of a JSON array parsed at once, ``size`` at a time; each chunk's values are
    let go by the array as soon as the chunk is handed out."""
    try:
        values = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(exc) from exc
    if len(values) > max_items:
        raise _too_many(max_items)
    for start in range(0, len(values), size):
        end = min(start + size, len(values))
        chunk = list(zip(range(start, end), values[start:end], strict=True))
        values[start:end] = [None] * (end - start)
        yield chunk


def _json_body_chunks(body: bytes, max_items: int, size: int) -> Iterator[BulkChunk]:
    """The items of an ``application/json`` bulk body: a JSON array, or NDJSON lines."""
    if body.lstrip()[:1] == b"[":
        if len(body) <= LARGE_ARRAY_BYTES:
            yield from _whole_array_chunks(body, max_items, size)
            return
        items: Iterator[tuple[int, Any]] = enumerate(_array_items(body))
    else:
        items = ((number, _parse_value(line)) for number, line in _lines(body))
    yield from _chunks_of(items, size, max_items)


async def iter_bulk_chunks(
    request: web.Request,
    *,
    max_items: int,
    max_bytes: int,
    digest: Digest | None = None,
    chunk_items: int = CHUNK_ITEMS,
    turn: asyncio.Lock | None = None,
) -> AsyncGenerator[BulkChunk, None]:
    """The items of a bulk body in order (see the module docstring), at most ``chunk_items``
    at a time; ``digest``, when given, is fed every byte of the body.

    ``turn``, when given, is held while chunks are parsed and handed out, never while the body
    is awaited: from the end of the read of a JSON body to its last chunk, around each chunk of
    a streamed one. Close the iterator (``contextlib.aclosing``) to give it back early."""
    content_type = request.content_type
    if content_type != JSON_TYPE and content_type not in NDJSON_TYPES:
        raise _unsupported("application/x-ndjson or application/json")
    _check_length(request, max_bytes)
    held = contextlib.nullcontext() if turn is None else turn
    count = 0
    if content_type == JSON_TYPE:
        body = await request.read()
        if digest is not None:
            digest.update(body)
        async with held:
            for chunk in _json_body_chunks(body, max_items, chunk_items):
                count += len(chunk)
                if count > max_items:
                    raise _too_many(max_items)
                yield chunk
        return

    received = 0
    line_number = 0  # of the first line not yet complete
    parts: list[bytes] = []  # the unfinished line, joined only once its end arrives
    pending: BulkChunk = []
    async for data in request.content.iter_chunked(_CHUNK):
        received += len(data)
        if received > max_bytes:
            raise _too_large(max_bytes)
        if digest is not None:
            digest.update(data)
        parts.append(data)
        if b"\n" not in data:
            continue
        complete, _, rest = b"".join(parts).rpartition(b"\n")
        parts = [rest] if rest else []
        for number, line in _lines(complete, line_number):
            count += 1
            if count > max_items:
                raise _too_many(max_items)
            pending.append((number, _parse_value(line)))
        line_number += complete.count(b"\n") + 1
        while len(pending) >= chunk_items:
            async with held:
                yield pending[:chunk_items]
            del pending[:chunk_items]
    tail = b"".join(parts)
    if tail.strip():
        count += 1
        if count > max_items:
            raise _too_many(max_items)
        pending.append((line_number, _parse_value(tail)))
    if pending:
        async with held:
            yield pending
