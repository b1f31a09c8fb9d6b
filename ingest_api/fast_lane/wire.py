"""HTTP/1.1 bytes of the fast lane: answers written by hand, and requests written again for
aiohttp when the lane hands one on (``ingest_api.fast_lane.protocol``)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from http import HTTPStatus

from aiohttp.http import SERVER_SOFTWARE

__all__ = ["LAST_CHUNK", "answer_bytes", "chunk", "closing", "has_token", "request_head"]

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_SERVER = b"Server: %s\r\n" % SERVER_SOFTWARE.encode()  # as aiohttp's answers say

LAST_CHUNK = b"0\r\n\r\n"
"""The end of a chunked body (without trailers)."""


class _HttpDate:
    """The ``Date`` header line, formatted once a second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"Date: %s\r\n" % formatdate(now, usegmt=True).encode()
        return self._line


_date = _HttpDate()


def answer_bytes(
    status: int, headers: Iterable[tuple[str, str]], body: bytes, *, keep_alive: bool
) -> bytes:
    """A whole HTTP/1.1 answer with a JSON ``body``; ``headers`` are the route's own (values
    the front made: one line of visible ASCII each). Without ``keep_alive`` it says
    ``Connection: close``."""
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown")),
        b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body),
        _date.line(),
        _SERVER,
    ]
    head.extend(b"%s: %s\r\n" % (name.encode(), value.encode()) for name, value in headers)
    if not keep_alive:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    head.append(body)
    return b"".join(head)


def request_head(
    method: bytes, target: bytes, version: str, headers: Sequence[tuple[bytes, bytes]]
) -> bytes:
    """The request line and header block of a parsed request, as sent (the names and values
    as the client wrote them, in its order)."""
    lines = [b"%s %s HTTP/%s\r\n" % (method, target, version.encode())]
    lines.extend(b"%s: %s\r\n" % pair for pair in headers)
    lines.append(b"\r\n")
    return b"".join(lines)


def closing(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Connection: close`` in place of any ``Connection`` or ``Keep-Alive``
    header: the server answers this request, then closes the connection."""
    kept = [(n, v) for n, v in headers if n.lower() not in (b"connection", b"keep-alive")]
    kept.append((b"Connection", b"close"))
    return kept


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def has_token(value: bytes, token: bytes) -> bool:
    """Whether the comma-separated header ``value`` lists ``token`` (case-insensitive)."""
    return any(part.strip().lower() == token for part in value.split(b","))
