"""Hostile bulk bodies against the NDJSON / JSON-array parser of the front (``iter_bulk_chunks``),
served over real HTTP: every body yields its numbered items (each parsed or with its own
error) or a clean 4xx error answer, never an unexpected exception."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from ingest_api.bodies import NotJson, iter_bulk_chunks
from ingest_api.middlewares import request_middleware
from tests.fuzz.support import assert_standard_error, fuzz_settings

MAX_BYTES = 2 * 1024 * 1024
MAX_ITEMS = 50
NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")
JSON = "application/json"

Expected = int | list[tuple[int, str | None]]
"""An HTTP status the parser must answer, or per item its index (0-based line number, blank
lines included, or position in a JSON array) and JSON type name (None: not JSON)."""


async def parse(request: web.Request) -> web.StreamResponse:
    """The items ``iter_bulk_chunks`` yields, as ``[index, type of value or None]``."""
    try:
        items = [
            item
            async for chunk in iter_bulk_chunks(request, max_items=MAX_ITEMS, max_bytes=MAX_BYTES)
            for item in chunk
        ]
    except web.HTTPException:
        raise
    except Exception as exc:  # the parser's own 4xx errors are ApiErrors, re-raised below
        if type(exc).__name__ == "ApiError":
            raise
        return web.Response(status=500, text=traceback.format_exc())
    found = [
        [index, None if isinstance(value, NotJson) else type(value).__name__]
        for index, value in items
    ]
    return web.json_response(found)


@pytest.fixture(scope="module")
def parser_client() -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]]]:
    """A real HTTP server around the parser, with the front's limits and error middleware."""
    loop = asyncio.new_event_loop()
    app = web.Application(client_max_size=MAX_BYTES, middlewares=[request_middleware()])
    app.router.add_post("/parse", parse)
    client: TestClient[Any, Any] = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())
    try:
        yield loop, client
    finally:
        loop.run_until_complete(client.close())
        loop.close()


def _json_type(raw: bytes) -> str | None:
    try:
        return type(orjson.loads(raw)).__name__
    except orjson.JSONDecodeError:
        return None


def expected(body: bytes, content_type: str) -> Expected:
    """What the documented behaviour (``ingest_api.bodies``) promises for ``body``."""
    if content_type not in (JSON, *NDJSON):
        return 415
    if len(body) > MAX_BYTES:
        return 413
    items: list[tuple[int, str | None]]
    if content_type == JSON and body.lstrip()[:1] == b"[":
        try:
            items = [(i, type(value).__name__) for i, value in enumerate(orjson.loads(body))]
        except orjson.JSONDecodeError:
            return 400
    else:
        lines = enumerate(body.split(b"\n"))
        items = [(number, _json_type(line)) for number, line in lines if line.strip()]
    return 413 if len(items) > MAX_ITEMS else items


HOSTILE_LINES = [
    b"\xff\xfe\xfd",  # invalid UTF-8
    b'{"entityID": "\xed\xa0\x80"}',  # an encoded surrogate
    b'{"entityID": "a\x00b"}',  # a raw NUL inside a string
    b'{"entityID": "a\\u0000b"}',
    b"\x00\x00\x00",
    b"\xef\xbb\xbf{}",  # a byte order mark
    b'{"entityID": 1}\r',  # CRLF line ending
    b"[" * 100_000,  # 100,000 levels of nesting
    b"[" * 1000 + b"]" * 1000,
    b"[" * 1100 + b"]" * 1100,
    b"9" * 1_000_000,  # a number of 10^6 digits
    b'{"n": ' + b"9" * 1_000_000 + b"}",
    b"1" + b"0" * 400 + b".5",
    b"-0.0e-99999",
    b'"just a string"',
    b"null",
    b"[1, 2, 3]",
    b"true",
    b'{"entityID": "ip-',  # truncated
    b" \t\x0b\x0c ",  # blank: not an item
    b"x" * (MAX_BYTES + 1),  # a line beyond the body limit
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what orjson writes
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
lines = st.one_of(
    st.sampled_from(HOSTILE_LINES),
    json_values.map(orjson.dumps),
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")),
)


@st.composite
def bulk_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body of hostile lines, as NDJSON or a JSON array, maybe with a BOM or truncated."""
    items = draw(st.lists(lines, max_size=8))
    content_type = draw(st.sampled_from([*NDJSON, JSON, JSON, "application/json; charset=utf-8"]))
    if content_type.startswith(JSON) and draw(st.booleans()):
        body = b"[" + b",".join(items) + b"]"
    else:
        separator = draw(st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\n \r\n"]))
        body = separator.join(items) + draw(st.sampled_from([b"", b"\n", b"\r\n"]))
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # a truncated final line
    if draw(st.integers(0, 9)) == 0:
        body = b"\xef\xbb\xbf" + body
    return body, content_type


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post(
    parser_client: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]],
    body: bytes,
    content_type: str,
    chunk_size: int | None,
) -> tuple[int, Any, bytes]:
    loop, client = parser_client

    async def send() -> tuple[int, Any, bytes]:
        data: Any = body if chunk_size is None else _chunks(body, chunk_size)
        async with client.post("/parse", data=data, headers={"Content-Type": content_type}) as r:
            return r.status, r.headers, await r.read()

    return loop.run_until_complete(send())


def _base_type(content_type: str) -> str:
    return content_type.split(";")[0].strip()


@fuzz_settings(150)
@given(body=bulk_bodies(), chunk_size=st.none() | st.sampled_from([1, 7, 4096, 65_536, 1 << 20]))
def test_hostile_bulk_bodies_give_numbered_items_or_a_clean_client_error(
    parser_client: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]],
    body: tuple[bytes, str],
    chunk_size: int | None,
) -> None:
    raw, content_type = body
    status, headers, answer = post(parser_client, raw, content_type, chunk_size)
    assert status != 500, answer.decode(errors="replace")
    promised = expected(raw, _base_type(content_type))
    if isinstance(promised, int):
        assert status == promised, answer[:500]
        assert_standard_error(status, headers, answer)
    else:
        assert status == 200, answer[:500]
        assert orjson.loads(answer) == [[index, kind] for index, kind in promised]


@pytest.mark.parametrize("hostile", HOSTILE_LINES, ids=lambda raw: repr(raw[:24]))
@pytest.mark.parametrize("content_type", ["application/x-ndjson", JSON])
def test_each_hostile_line_alone_is_one_item_or_a_clean_client_error(
    parser_client: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]],
    hostile: bytes,
    content_type: str,
) -> None:
    status, headers, answer = post(parser_client, hostile + b"\n", content_type, None)
    promised = expected(hostile + b"\n", content_type)
    if isinstance(promised, int):
        assert status == promised, answer[:500]
        assert_standard_error(status, headers, answer)
    else:
        assert status == 200, answer[:500]
        assert orjson.loads(answer) == [[index, kind] for index, kind in promised]


def test_a_streamed_body_beyond_the_limit_is_refused_with_413(
    parser_client: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]],
) -> None:
    body = b'{"entityID": "x"}\n' * (MAX_BYTES // 18 + 10)
    status, headers, answer = post(parser_client, body, "application/x-ndjson", 65_536)
    assert status == 413
    assert_standard_error(status, headers, answer)


def test_more_items_than_allowed_are_refused_with_413(
    parser_client: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]],
) -> None:
    body = b"{}\n" * (MAX_ITEMS + 1)
    for content_type, raw in (("application/x-ndjson", body), (JSON, b"[" + b"{}," * 50 + b"{}]")):
        status, headers, answer = post(parser_client, raw, content_type, None)
        assert status == 413
        assert_standard_error(status, headers, answer)
