"""One client connection of the fast lane (``ingest_api.fast_lane``).

Requests are parsed with httptools (llhttp, strict). A request the lane takes (``FastLane.
takes``: ``POST /association`` with a small JSON ``Content-Length`` body and nothing unusual)
is answered by the lane's route; every other request goes to aiohttp, which serves the whole
API:

- when the connection's first request is not one the lane takes, the connection is handed to
  aiohttp as it stands, the bytes read so far included, and the lane is out of it;
- a later request the lane does not take is written again, as the client sent it but with
  ``Connection: close``, to an aiohttp handler on the same connection: aiohttp answers it and
  closes the connection, as HTTP/1.1 lets a server do after any answer (the client's next
  request opens a new connection, on the lane again); requests pipelined behind it are never
  read, so never acknowledged.

Answers leave in the order of the requests: a pipelined request waits for those before it, and
aiohttp is given its request only once the lane's answers before it are written. At most
``MAX_PIPELINED`` answers wait per connection; reading pauses beyond that, and while the
client does not read its answers (the transport's write buffer is full).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol, cast

import httptools
from aiohttp.web_protocol import RequestHandler

from ingest_api.fast_lane import wire

__all__ = ["MAX_PIPELINED", "FastLaneProtocol", "Lane", "PendingAnswer"]

MAX_PIPELINED = 32
MAX_LINE = 8190
MAX_HEADERS = 128
"""aiohttp's limits on a request line, a header and the number of headers: a request beyond
them is aiohttp's to refuse."""

_BAD_REQUEST_LINE = b"\x00\r\n\r\n"
"""Sent to aiohttp in place of a request the lane could not parse: aiohttp answers it 400 and
closes the connection, after the answers before it."""


class PendingAnswer:
    """The answer to one request the lane took, in its connection's order: ``data`` once it
    is known (then the connection writes it, after the answers before it)."""

    __slots__ = ("_connection", "data")

    def __init__(self, connection: FastLaneProtocol) -> None:
        self._connection = connection
        self.data: bytes | None = None

    def answer(self, data: bytes) -> None:
        self.data = data
        self._connection.write_ready()


class Lane(Protocol):
    """What a connection needs of its lane (``ingest_api.fast_lane.lane.FastLane``)."""

    connections: set[FastLaneProtocol]

    def forget(self, connection: FastLaneProtocol) -> None: ...

    def takes(
        self, method: bytes, target: bytes, version: str, headers: Sequence[tuple[bytes, bytes]]
    ) -> dict[str, str] | None: ...

    def answer(
        self,
        connection: FastLaneProtocol,
        headers: Mapping[str, str],
        body: bytes,
        *,
        keep_alive: bool,
    ) -> PendingAnswer: ...

    def aiohttp_handler(self) -> RequestHandler: ...


class _TooLarge(Exception):
    """Raised inside the parser for a request line or header beyond aiohttp's limits."""


class _HandOver(Exception):
    """Raised inside the parser to stop it: the connection goes to aiohttp as it stands."""


class FastLaneProtocol(asyncio.Protocol):
    """See the module docstring."""

    def __init__(self, lane: Lane) -> None:
        self._lane = lane
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._opening: bytearray | None = bytearray()  # read until the first request is known
        self._target = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._taken: dict[str, str] | None = None  # the headers of a request the lane takes
        self._chunked = False
        self._answers: deque[PendingAnswer] = deque()
        self._aiohttp: RequestHandler | None = None
        self._held: list[bytes] | None = None  # for aiohttp, once the lane's answers are out
        self._passthrough = False  # after an upgrade: bytes go to aiohttp as they come
        self._reading_paused = False
        self._writing_paused = False
        self._closing = False  # no more requests: the last answer closes the connection
        self._skip = False  # the request being parsed came after the last one answered
        self.idle_since = self._loop.time()

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self._lane.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._passthrough:
            self._to_aiohttp(data)
            return
        if self._opening is not None:
            self._opening += data
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # After an upgrade's head the bytes are no longer HTTP: aiohttp has the request.
            self._passthrough = True
            self._to_aiohttp(data[upgrade.args[0] :])
        except httptools.HttpParserError:
            if self._opening is not None:  # the first request is aiohttp's, or malformed
                self._hand_over()
            elif self._aiohttp is not None or self._held is not None:
                self.abort()  # a request aiohttp was being given turned out malformed
            elif not self._closing:
                self._closing = True
                self._relay_from_now()
                self._to_aiohttp(_BAD_REQUEST_LINE)

    def eof_received(self) -> bool:
        if self._aiohttp is not None and self._held is None:
            self._aiohttp.eof_received()
            return False
        # No more requests: the answers still to come are written, then the connection closes.
        self._closing = True
        return bool(self._answers) or self._held is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lane.forget(self)
        self._transport = None
        self._answers.clear()
        if self._aiohttp is not None:
            self._aiohttp.connection_lost(exc)

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self._aiohttp is not None:
            self._aiohttp.pause_writing()
        self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._aiohttp is not None:
            self._aiohttp.resume_writing()
        self._maybe_resume_reading()

    # ---- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._skip = self._closing
        self._target = b""
        self._headers = []
        self._body = []
        self._taken = None
        self._chunked = False

    def on_url(self, url: bytes) -> None:
        if self._skip:
            return
        self._target += url
        if len(self._target) > MAX_LINE:
            raise _TooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._skip:
            return
        if len(name) + len(value) > MAX_LINE or len(self._headers) >= MAX_HEADERS:
            raise _TooLarge
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._skip:
            return
        parser = self._parser
        taken = self._lane.takes(
            parser.get_method(), self._target, parser.get_http_version(), self._headers
        )
        if self._opening is not None:
            if taken is None:
                raise _HandOver
            self._opening = None
        if taken is not None:
            self._taken = taken
            return
        # aiohttp answers this request, the connection's last (the module docstring).
        self._closing = True
        self._relay_from_now()
        self._chunked = any(
            name.lower() == b"transfer-encoding" and wire.has_token(value, b"chunked")
            for name, value in self._headers
        )
        self._to_aiohttp(
            wire.request_head(
                parser.get_method(),
                self._target,
                parser.get_http_version(),
                wire.closing(self._headers),
            )
        )

    def on_body(self, body: bytes) -> None:
        if self._skip:
            return
        if self._taken is not None:
            self._body.append(body)
        elif self._chunked:
            self._to_aiohttp(wire.chunk(body))
        else:
            self._to_aiohttp(body)

    def on_message_complete(self) -> None:
        if self._skip:
            return  # a request after one that closes the connection: never answered
        taken = self._taken
        if taken is None:
            if self._chunked:
                self._to_aiohttp(wire.LAST_CHUNK)
            return
        body = b"".join(self._body)
        keep_alive = self._parser.should_keep_alive()
        pending = self._lane.answer(self, taken, body, keep_alive=keep_alive)
        if not keep_alive:
            self._closing = True
        self._answers.append(pending)
        if pending.data is not None:
            self.write_ready()
        elif len(self._answers) >= MAX_PIPELINED:
            self._pause_reading()

    # ---- answers ----------------------------------------------------------------------------

    def write_ready(self) -> None:
        """Write the answers that are known, in order, up to the first one still pending."""
        answers = self._answers
        transport = self._transport
        if transport is None:
            answers.clear()
            return
        out: list[bytes] = []
        while answers:
            data = answers[0].data
            if data is None:
                break
            answers.popleft()
            out.append(data)
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
            self.idle_since = self._loop.time()
        if not answers:
            if self._held is not None:
                self._release_held()
            elif self._closing and self._aiohttp is None:
                # the last request is answered (Connection: close, end of input, shutdown)
                transport.close()
                return
        self._maybe_resume_reading()

    def close_when_answered(self) -> None:
        """Read no more requests; close once the answers waiting are written (shutdown, or
        idle too long). A connection aiohttp serves is aiohttp's to close."""
        if self._aiohttp is not None or self._held is not None:
            return
        self._closing = True
        self._pause_reading()
        if not self._answers and self._aiohttp is None and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close the connection now, answers still waiting or not."""
        self._answers.clear()
        if self._transport is not None:
            self._transport.close()

    @property
    def answering(self) -> bool:
        """Whether answers of the lane wait to be written on this connection."""
        return bool(self._answers)

    # ---- aiohttp ----------------------------------------------------------------------------

    def _hand_over(self) -> None:
        """Give the connection to aiohttp as it stands (its first request is not the lane's)."""
        transport, opening = self._transport, self._opening
        self._opening = None
        self._lane.forget(self)
        if transport is None or opening is None:
            return
        handler = self._lane.aiohttp_handler()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._writing_paused:
            handler.pause_writing()
        handler.data_received(bytes(opening))

    def _relay_from_now(self) -> None:
        """Give aiohttp what follows, once the lane's answers before it are written."""
        if self._aiohttp is None and self._held is None:
            self._held = []
            if self._answers:
                self._pause_reading()  # hold no more than the request that waits
            else:
                self._release_held()

    def _to_aiohttp(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        elif self._aiohttp is not None:
            self._aiohttp.data_received(data)

    def _release_held(self) -> None:
        """Attach aiohttp's handler to the connection and give it what waited for it."""
        held, self._held = self._held or [], None
        transport = self._transport
        if transport is None:
            return
        handler = self._aiohttp = self._lane.aiohttp_handler()
        self._lane.forget(self)  # aiohttp's to serve and close from here on
        handler.connection_made(transport)
        if self._writing_paused:
            handler.pause_writing()
        self._reading_paused = False  # aiohttp's flow control from here on
        transport.resume_reading()
        if held:
            handler.data_received(b"".join(held))

    # ---- flow control -----------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if (
            self._reading_paused
            and not self._writing_paused
            and not self._closing
            and self._held is None
            and len(self._answers) < MAX_PIPELINED
            and self._transport is not None
        ):
            self._reading_paused = False
            self._transport.resume_reading()
