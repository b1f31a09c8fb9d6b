"""A fixed-rate load generator that holds its rate and measures latency without coordinated
omission.

wrk only approximates a rate (each connection waits a fixed delay between a response and its
next request, so the rate moves with the server's latency) and times each request from the
moment it was sent, so a server that stalls delays the requests behind the stall and they are
never counted as late. Here request ``i`` is due at ``start + i / rate``, whatever happened
before it: a scheduler hands each due request to an idle keep-alive connection, or holds it
until one is free, and its latency runs from the time it was due to its response's last byte.
A stalled server therefore shows up as latency (and, when it cannot keep up, as an achieved
rate below the target), never as requests that were quietly not sent.

The client is a small HTTP/1.1 one on asyncio protocols (prepared request bytes, responses
parsed by their ``Content-Length``) on uvloop, so that it costs a few microseconds a request of
the machine it shares with the server; the timer wakes about every millisecond and sends every
request that is due, so timer jitter counts against the server (latency is never measured
from a later time than the due one).

    python -m bench.paced URL --rate 2000 --seconds 10 [--connections 64]
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import uvloop

_HEADER_END = b"\r\n\r\n"
_TICK = 0.001


@dataclass(frozen=True)
class PacedResult:
    """One fixed-rate run: what was asked, what was achieved, latency from the due time."""

    target_rate: float
    requests: int
    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        """Requests answered 2xx per second, from the first due time to the last response."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def rate_error(self) -> float:
        """How far the achieved rate is from the target, as a fraction of the target."""
        return abs(self.rate - self.target_rate) / self.target_rate


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time, responses parsed by their
    ``Content-Length`` (the front and the baselines never answer chunked)."""

    def __init__(self, pacer: _Pacer) -> None:
        self.pacer = pacer
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due = 0.0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.pacer.lost(self)

    def send(self, request: bytes, due: float) -> None:
        self.due = due
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise RuntimeError("chunked responses are not supported by bench.paced")
            total = end + len(_HEADER_END) + length
            if len(self.buffer) < total:
                return
            status = int(head[9:12])
            del self.buffer[:total]
            self.pacer.answered(self, status)


class _Pacer:
    def __init__(self, requests: Sequence[bytes], rate: float, seconds: float) -> None:
        self.requests = requests
        self.rate = rate
        self.count = max(int(rate * seconds), 1)
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[float] = deque()  # due times of requests no connection took yet
        self.latencies: list[float] = []
        self.ok = 0
        self.errors = 0
        self.sent = 0
        self.last_response = 0.0
        self.finished = asyncio.get_running_loop().create_future()

    def dispatch(self, due: float) -> None:
        if self.idle:
            self._send(self.idle.popleft(), due)
        else:
            self.waiting.append(due)

    def _send(self, conn: _Connection, due: float) -> None:
        conn.send(self.requests[self.sent % len(self.requests)], due)
        self.sent += 1

    def answered(self, conn: _Connection, status: int) -> None:
        now = time.perf_counter()
        self.latencies.append(now - conn.due)
        self.last_response = now
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.errors += 1
        if self.waiting:
            self._send(conn, self.waiting.popleft())
        else:
            self.idle.append(conn)
        if len(self.latencies) >= self.count and not self.finished.done():
            self.finished.set_result(None)

    def lost(self, conn: _Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if not self.finished.done():
            self.finished.set_exception(ConnectionError("the server closed a connection"))


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    index = min(int(fraction * len(ordered)), len(ordered) - 1)
    return ordered[index] * 1000


def _request_bytes(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _run(
    url: str,
    path: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    rate: float,
    seconds: float,
    connections: int,
) -> PacedResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [_request_bytes(f"{host}:{port}", path, headers, body) for body in bodies]
    loop = asyncio.get_running_loop()
    pacer = _Pacer(requests, rate, seconds)
    conns: list[_Connection] = []
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: _Connection(pacer), host, port)
        conns.append(conn)
    pacer.idle.extend(conns)
    start = time.perf_counter()
    issued = 0
    while issued < pacer.count:
        now = time.perf_counter()
        due_now = min(int((now - start) * rate) + 1, pacer.count)
        while issued < due_now:
            pacer.dispatch(start + issued / rate)
            issued += 1
        next_due = start + issued / rate
        # At least a millisecond: a shorter timer fires at once on uvloop, and the loop would
        # spin, taking a core from the server it measures.
        await asyncio.sleep(max(next_due - time.perf_counter(), _TICK))
    try:
        await asyncio.wait_for(pacer.finished, timeout=max(30.0, seconds))
    finally:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
    ordered = sorted(pacer.latencies)
    return PacedResult(
        target_rate=rate,
        requests=len(ordered),
        ok=pacer.ok,
        errors=pacer.errors,
        seconds=pacer.last_response - start,
        p50_ms=_percentile(ordered, 0.50),
        p90_ms=_percentile(ordered, 0.90),
        p99_ms=_percentile(ordered, 0.99),
        p999_ms=_percentile(ordered, 0.999),
        max_ms=ordered[-1] * 1000 if ordered else float("nan"),
    )


def paced(
    url: str,
    path: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    rate: float,
    seconds: float,
    connections: int = 64,
) -> PacedResult:
    """Send ``rate * seconds`` POSTs to ``url + path`` on a fixed schedule (cycling ``bodies``)
    over ``connections`` keep-alive connections; see the module docstring."""
    return uvloop.run(_run(url, path, bodies, headers, rate, seconds, connections))


def main() -> None:
    import argparse
    import json
    from dataclasses import asdict

    parser = argparse.ArgumentParser(prog="python -m bench.paced", description=__doc__)
    parser.add_argument("url", help="http://host:port")
    parser.add_argument("--path", default="/api/ingest/v1/association")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    args = parser.parse_args()
    from bench.http_bench import association_bodies

    headers = {"Content-Type": "application/json"}
    headers.update(dict(h.split(": ", 1) for h in args.header))
    result = paced(
        args.url,
        args.path,
        association_bodies(20_000),
        headers,
        rate=args.rate,
        seconds=args.seconds,
        connections=args.connections,
    )
    print(json.dumps({**asdict(result), "rate": result.rate}, indent=2))


if __name__ == "__main__":
    main()
