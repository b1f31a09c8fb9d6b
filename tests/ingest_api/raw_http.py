"""HTTP/1.1 spoken by hand over a real socket: requests written as bytes, answers read one at a
time in the order they arrive, so that tests see pipelining and connection reuse as a client
does (no client library that would open a new connection, wait between requests or fix up a
request behind the test's back)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tests.ingest_api.support import BASE

__all__ = ["ASSOCIATION", "Answer", "RawConnection", "post_association", "request"]

ASSOCIATION = f"{BASE}/association"

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer as it came off the wire: status, headers (names as sent), body."""

    version: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (case-insensitive), None without one."""
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    def header_names(self) -> set[str]:
        return {name.lower() for name, _ in self.headers}

    def json(self) -> Any:
        return orjson.loads(self.body)


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def request(
    method: str,
    target: str,
    headers: Headers = (),
    body: bytes = b"",
    *,
    version: str = "1.1",
    length: bool = True,
) -> bytes:
    """The bytes of one request: a ``Host`` header, ``headers`` in their order, a
    ``Content-Length`` of ``body`` when there is one (and ``length``), then ``body``."""
    lines = [f"{method} {target} HTTP/{version}", "Host: localhost"]
    lines.extend(f"{name}: {value}" for name, value in _pairs(headers))
    if body and length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post_association(
    value: Any,
    headers: Headers = (),
    *,
    request_id: str | None = None,
    version: str = "1.1",
    content_type: str = "application/json",
) -> bytes:
    """``POST /association`` of ``value`` (JSON-encoded unless bytes), with a JSON
    Content-Type, ``headers`` and ``x-request-id: request_id`` when given."""
    body = value if isinstance(value, bytes) else orjson.dumps(value)
    pairs = [("Content-Type", content_type), *_pairs(headers)]
    if request_id is not None:
        pairs.append(("x-request-id", request_id))
    return request("POST", ASSOCIATION, pairs, body, version=version)


class RawConnection:
    """One client connection: ``send`` bytes, read ``answer``s one after the other."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(
        cls, port: int, host: str = "127.0.0.1", *, receive_buffer: int | None = None
    ) -> RawConnection:
        """A connection to ``host:port``; ``receive_buffer`` shrinks the socket's receive
        buffer, so that answers not read soon fill the server's buffers."""
        if receive_buffer is None:
            reader, writer = await asyncio.open_connection(host, port)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, (host, port))
            except BaseException:
                sock.close()
                raise
            reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    async def send(self, *requests: bytes) -> None:
        """Write ``requests`` in one write (pipelined when several)."""
        self._writer.write(b"".join(requests))
        await self._writer.drain()

    async def send_in_pieces(self, data: bytes, size: int) -> None:
        """Write ``data`` ``size`` bytes at a time, letting the server read each piece."""
        for start in range(0, len(data), size):
            self._writer.write(data[start : start + size])
            await self._writer.drain()
            await asyncio.sleep(0.002)

    def finish_sending(self) -> None:
        """Half-close: the client sends nothing more (it still reads)."""
        self._writer.write_eof()

    async def answer(self, within: float = 2.0) -> Answer:
        """The next answer (an interim ``100 Continue`` is one); fails when none comes
        ``within`` seconds or the connection closes first."""
        async with asyncio.timeout(within):
            return await self._read_answer()

    async def answers(self, count: int, within: float = 5.0) -> list[Answer]:
        async with asyncio.timeout(within):
            return [await self._read_answer() for _ in range(count)]

    async def exchange(self, data: bytes, within: float = 2.0) -> Answer:
        """Send one request and read its answer."""
        await self.send(data)
        return await self.answer(within)

    async def is_closed_by_server(self, within: float = 2.0) -> bool:
        """Whether the server closes the connection within ``within`` seconds, sending nothing
        more (any byte it still sends fails the test: an answer nobody asked for)."""
        try:
            async with asyncio.timeout(within):
                extra = await self._reader.read()
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        assert extra == b"", f"unexpected bytes before the close: {extra[:200]!r}"
        return True

    async def nothing_within(self, seconds: float) -> bool:
        """Whether nothing at all arrives (neither bytes nor a close) for ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                await self._reader.read(1)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    async def _read_answer(self) -> Answer:
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        version, status, *_ = status_line.split(" ", 2)
        assert version.startswith("HTTP/"), status_line
        headers = []
        for line in lines:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        answer = Answer(version[5:], int(status), headers, b"")
        if answer.status < 200 or answer.status in (204, 304):
            return answer
        if (answer.header("transfer-encoding") or "").lower() == "chunked":
            body = await self._read_chunked()
        elif (length := answer.header("content-length")) is not None:
            body = await self._reader.readexactly(int(length))
        else:
            body = await self._reader.read()
        return Answer(answer.version, answer.status, headers, body)

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await self._reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
