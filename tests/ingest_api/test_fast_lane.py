"""The fast lane (``ingest_api.fast_lane``) over real localhost sockets: ``POST /association``
is answered by the lane, every other request by aiohttp, and the answers leave in the order of
the requests, whoever answers them. A connection whose first request is not the lane's is
aiohttp's for good; on one that started with a lane request, aiohttp's answer is the last
(``Connection: close``): the requests sent behind it are neither answered nor acknowledged,
and the client sends them again on a new connection."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from ingest_api.app import create_app
from ingest_api.fast_lane import FastLaneSite
from ingest_api.idempotency import HEADER, REPLAYED_HEADER
from ingest_api.keys import new_api_key
from tests.backends import FAST_RETRY_TIERS, MemoryQueueFactory
from tests.ingest_api.raw_http import (
    ASSOCIATION,
    Answer,
    RawConnection,
    post_association,
    request,
)
from tests.ingest_api.support import (
    ASN,
    BASE,
    IP,
    IP_2,
    Inbox,
    bearer,
    consume,
    make_settings,
)
from tests.workers.helpers import eventually
from workers.ground.errors import BrokerUnavailable
from workers.queue.base import JobQueue, Topology
from workers.queue.memory import MemoryJobQueue
from workers.store.sqlite import SqliteStore

PAIR = {"entityID": ASN, "relatedEntityID": IP}
OTHER_PAIR = {"entityID": ASN, "relatedEntityID": IP_2}
INVALID = {"entityID": "asn-nope", "relatedEntityID": IP}
JWT = bearer(user="alice")
ERROR_KEYS = {"code", "message", "errorID"}


class Front:
    """The front served as ``ingest_api.main`` serves it (``FastLaneSite``, no aiohttp access
    log) on a localhost port; ``connect`` opens a raw connection to it."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port
        self._connections: list[RawConnection] = []
        self._stopped = False

    async def connect(self, *, receive_buffer: int | None = None) -> RawConnection:
        connection = await RawConnection.open(self.port, receive_buffer=receive_buffer)
        self._connections.append(connection)
        return connection

    async def stop(self) -> None:
        """Stop serving (``AppRunner.cleanup``), once."""
        if not self._stopped:
            self._stopped = True
            await self.runner.cleanup()

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()
        await self.stop()


ServeFront = Callable[..., Awaitable[Front]]


@pytest.fixture
async def serve(store: SqliteStore, queue: MemoryJobQueue) -> AsyncIterator[ServeFront]:
    """Serves the front on ``queue`` (or the queue given) and ``store``, with the settings
    given; the front stops before its queue and store close."""
    fronts: list[Front] = []

    async def start(
        on: JobQueue | None = None,
        *,
        shutdown_timeout: float = 5.0,
        send_buffer: int | None = None,
        **settings: Any,
    ) -> Front:
        app = create_app(
            make_settings(**settings),
            queue=queue if on is None else on,
            store=store,
            manage_backends=False,
        )
        runner = web.AppRunner(app, handler_cancellation=False, access_log=None)
        await runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        if send_buffer is not None:  # the connections accepted inherit it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        await FastLaneSite(runner, sock, shutdown_timeout=shutdown_timeout).start()
        front = Front(runner, sock.getsockname()[1])
        fronts.append(front)
        return front

    yield start
    for front in fronts:
        await front.close()


@pytest.fixture
async def front(serve: ServeFront) -> Front:
    return await serve()


async def cached(front: Front, credentials: Mapping[str, str]) -> None:
    """Have the front verify an API key once (looked up in the store, on a connection of
    its own), so that it is known without a look-up from then on."""
    connection = await front.connect()
    answer = await connection.exchange(post_association(OTHER_PAIR, credentials))
    assert answer.status == 202, answer.body
    await connection.close()


def job_of(answer: Answer) -> str:
    assert answer.status == 202, (answer.status, answer.body)
    job_id: str = answer.json()["jobID"]
    return job_id


def error_code_of(answer: Answer, status: int) -> str:
    assert answer.status == status, (answer.status, answer.body)
    body = answer.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) >= ERROR_KEYS
    assert answer.header("x-error-id") == error["errorID"]
    code: str = error["code"]
    return code


def get(path: str, headers: Mapping[str, str] = {}, request_id: str | None = None) -> bytes:
    pairs = list(headers.items())
    if request_id is not None:
        pairs.append(("x-request-id", request_id))
    return request("GET", path, pairs)


async def store_knows(store: SqliteStore, job_id: str) -> bool:
    return await store.get_job(job_id) is not None


def sample(text: str, series: str) -> float:
    found = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


async def scrape(front: Front) -> str:
    connection = await front.connect()
    answer = await connection.exchange(get("/metrics"))
    assert answer.status == 200
    await connection.close()
    return answer.body.decode()


def chunked_post(value: Any, request_id: str, credentials: Mapping[str, str] = JWT) -> bytes:
    body = orjson.dumps(value)
    half = len(body) // 2
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        half,
        body[:half],
        len(body) - half,
        body[half:],
    )
    headers = [
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
        ("x-request-id", request_id),
        *credentials.items(),
    ]
    return request("POST", ASSOCIATION, headers, chunks, length=False)


# one request ----------------------------------------------------------------------------------
async def test_a_plain_post_is_acknowledged_with_its_job_location_and_request_id(
    front: Front,
) -> None:
    connection = await front.connect()
    answer = await connection.exchange(post_association(PAIR, JWT, request_id="req-lane-1"))
    assert answer.status == 202
    assert answer.version == "1.1"
    job_id = job_of(answer)
    assert answer.body == b'{"message":"acknowledged","jobID":"%s"}' % job_id.encode()
    assert answer.header("Location") == f"{BASE}/jobs/{job_id}"
    assert answer.header("x-request-id") == "req-lane-1"
    assert answer.header("Content-Type") == "application/json"
    assert answer.header("Content-Length") == str(len(answer.body))


async def test_an_insane_request_id_is_replaced_by_a_new_one(front: Front) -> None:
    connection = await front.connect()
    answer = await connection.exchange(post_association(PAIR, JWT, request_id="a b<c>"))
    job_of(answer)
    request_id = answer.header("x-request-id")
    assert request_id is not None and request_id != "a b<c>"
    assert len(request_id) == 32 and int(request_id, 16) >= 0


@pytest.mark.parametrize("caller", ["jwt", "cached api key", "gateway headers"])
async def test_an_acknowledged_job_is_queued_once_and_visible_to_its_caller(
    serve: ServeFront, queue: MemoryJobQueue, api_key: dict[str, str], caller: str
) -> None:
    settings: dict[str, Any] = {}
    credentials: Mapping[str, str] = JWT
    if caller == "gateway headers":
        settings = {"trust_gateway_headers": True, "gateway_default_roles": "reporter,user"}
        credentials = {"user-id": "alice", "groups": "soc"}
    front = await serve(**settings)
    if caller == "cached api key":
        credentials = api_key
        await cached(front, api_key)
    inbox = await consume(queue)
    if caller == "cached api key":
        await inbox.items(1)  # the job of the request that had the key verified

    connection = await front.connect()
    job_id = job_of(await connection.exchange(post_association(PAIR, credentials)))
    (item,) = await inbox.items(1)
    assert (item.job, item.index, item.total, item.user) == (job_id, 0, 1, "alice")
    assert (item.entity_id, item.related_id) == (ASN, IP)

    status = await connection.exchange(get(f"{BASE}/jobs/{job_id}", credentials))
    assert status.status == 200, status.body
    assert status.json()["jobID"] == job_id
    assert inbox.is_empty()
    assert await queue.depth() == 0


@pytest.mark.parametrize(
    ("value", "credentials", "status"),
    [
        (PAIR, JWT, 202),
        (INVALID, JWT, 400),
        (PAIR, {}, 401),
        (PAIR, bearer(roles=("user",)), 403),
    ],
    ids=["acknowledged", "invalid item", "no credentials", "no reporter role"],
)
async def test_the_lanes_answer_has_the_same_status_body_and_header_names_as_aiohttps(
    front: Front, value: Any, credentials: Mapping[str, str], status: int
) -> None:
    # A chunked body is aiohttp's to read: the same request, answered by aiohttp.
    by_lane = await (await front.connect()).exchange(
        post_association(value, credentials, request_id="by-lane")
    )
    by_aiohttp = await (await front.connect()).exchange(
        chunked_post(value, "by-aiohttp", credentials)
    )
    assert by_aiohttp.status == by_lane.status == status
    assert by_aiohttp.version == by_lane.version
    lane_body, aiohttp_body = by_lane.json(), by_aiohttp.json()
    assert set(lane_body) == set(aiohttp_body)
    if status == 202:
        assert set(lane_body) == {"message", "jobID"}
        assert lane_body["message"] == aiohttp_body["message"]
        for answer in (by_aiohttp, by_lane):
            assert answer.header("Location") == f"{BASE}/jobs/{answer.json()['jobID']}"
    else:
        assert set(lane_body["error"]) == set(aiohttp_body["error"])
        assert error_code_of(by_lane, status) == error_code_of(by_aiohttp, status)
    for answer in (by_aiohttp, by_lane):
        assert answer.header("Content-Type") == "application/json"
        assert answer.header("Content-Length") == str(len(answer.body))
    assert by_lane.header_names() == by_aiohttp.header_names()


async def test_a_first_request_whose_key_is_not_known_yet_is_answered_with_those_behind_it(
    front: Front, api_key: dict[str, str]
) -> None:
    connection = await front.connect()
    await connection.send(
        post_association(PAIR, api_key, request_id="key-unknown"),
        post_association(PAIR, api_key, request_id="key-known"),
        post_association(PAIR, JWT, request_id="jwt"),
    )
    answers = await connection.answers(3)
    assert [a.header("x-request-id") for a in answers] == ["key-unknown", "key-known", "jwt"]
    assert len({job_of(a) for a in answers}) == 3


# pipelining and connection reuse --------------------------------------------------------------
async def test_many_requests_pipelined_in_one_write_are_all_answered_in_order(
    front: Front, queue: MemoryJobQueue
) -> None:
    count = 80  # more than the lane lets wait on one connection
    inbox = await consume(queue)
    connection = await front.connect()
    await connection.send(
        *(post_association(PAIR, JWT, request_id=f"req-{i}") for i in range(count))
    )
    answers = await connection.answers(count)
    assert [a.header("x-request-id") for a in answers] == [f"req-{i}" for i in range(count)]
    job_ids = [job_of(a) for a in answers]
    assert len(set(job_ids)) == count
    items = await inbox.items(count)
    assert sorted(item.job for item in items) == sorted(job_ids)
    # and the connection goes on serving
    job_of(await connection.exchange(post_association(PAIR, JWT)))


def mixed_requests() -> list[tuple[bytes, int]]:
    """Requests of every kind, by a caller the lane knows, and the status of each answer."""
    return [
        (post_association(PAIR, JWT, request_id="m-0"), 202),
        (get("/metrics", request_id="m-1"), 200),
        (post_association(PAIR, JWT, request_id="m-2"), 202),
        (get(f"{BASE}/no/such/path", JWT, request_id="m-3"), 404),
        (post_association(OTHER_PAIR, JWT, request_id="m-4"), 202),
        (post_association(INVALID, JWT, request_id="m-5"), 400),
        (get("/healthz", request_id="m-6"), 200),
        (post_association(PAIR, JWT, request_id="m-7"), 202),
    ]


MIXED_JOBS = (0, 2, 4, 7)
"""The requests of ``mixed_requests`` that are acknowledged."""
MIXED_NOT_FOR_THE_LANE = (1, 3, 6)
"""The requests of ``mixed_requests`` that the lane does not take: aiohttp answers them."""


def assert_mixed_answers(answers: list[Answer]) -> None:
    expected = mixed_requests()
    assert [a.header("x-request-id") for a in answers] == [f"m-{i}" for i in range(len(expected))]
    assert [a.status for a in answers] == [status for _, status in expected]
    assert b"ingest_http_requests_total" in answers[1].body
    assert error_code_of(answers[3], 404) == "not_found"
    assert error_code_of(answers[5], 400) == "invalid_entity_id"
    assert len({job_of(answers[i]) for i in MIXED_JOBS}) == len(MIXED_JOBS)


def closes(answer: Answer) -> bool:
    """Whether ``answer`` says the server closes the connection after it."""
    return (answer.header("Connection") or "").lower() == "close"


async def send_as_a_client_that_retries(
    front: Front, requests: list[bytes], *, pipelined: bool
) -> tuple[list[Answer], int]:
    """Send ``requests`` as an HTTP/1.1 client does: all at once (``pipelined``) or each after
    the answer before it, and once a connection closes after an answer, the requests it left
    unanswered again on a new connection. The answers, in order, and how many connections
    were opened."""
    answers: list[Answer] = []
    opened = 0
    while len(answers) < len(requests):
        connection = await front.connect()
        opened += 1
        left = requests[len(answers) :]
        if pipelined:
            await connection.send(*left)
        for data in left:
            if not pipelined:
                await connection.send(data)
            answer = await connection.answer()
            answers.append(answer)
            if closes(answer):
                # and nothing more: the requests sent behind it are not answered
                assert await connection.is_closed_by_server()
                break
    return answers, opened


async def assert_queued_jobs_are_exactly(
    front: Front, inbox: Inbox, job_ids: list[str], within: float = 10.0
) -> None:
    """One more job, posted on a new connection (so queued after any before it), then the
    queue has carried exactly ``job_ids`` and that one: nothing else was acknowledged."""
    last = job_of(await (await front.connect()).exchange(post_association(PAIR, JWT)))
    items = await inbox.items(len(job_ids) + 1, within)
    assert sorted(item.job for item in items) == sorted([*job_ids, last])
    assert inbox.is_empty()


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "one by one"])
async def test_on_a_connection_started_by_a_lane_request_aiohttps_answer_is_the_last_one(
    front: Front, queue: MemoryJobQueue, pipelined: bool
) -> None:
    # Each request the lane does not take is answered with `Connection: close`, then the
    # connection closes: the client sends what it left unanswered on a new connection.
    inbox = await consume(queue)
    answers, opened = await send_as_a_client_that_retries(
        front, [data for data, _ in mixed_requests()], pipelined=pipelined
    )
    assert_mixed_answers(answers)
    assert [i for i, a in enumerate(answers) if closes(a)] == list(MIXED_NOT_FOR_THE_LANE)
    assert opened == len(MIXED_NOT_FOR_THE_LANE) + 1
    # the requests sent behind a closing answer were acknowledged once, on the new connection
    await assert_queued_jobs_are_exactly(front, inbox, [job_of(answers[i]) for i in MIXED_JOBS])


async def test_a_connection_whose_first_request_is_a_get_answers_mixed_requests_and_stays_open(
    front: Front,
) -> None:
    connection = await front.connect()
    await connection.send(
        get("/healthz", request_id="first"), *(data for data, _ in mixed_requests())
    )
    first, *answers = await connection.answers(1 + len(mixed_requests()))
    assert (first.status, first.header("x-request-id")) == (200, "first")
    assert_mixed_answers(answers)
    assert not any(closes(a) for a in [first, *answers])
    job_id = job_of(answers[0])
    status = await connection.exchange(get(f"{BASE}/jobs/{job_id}", JWT))
    assert (status.status, status.json()["jobID"]) == (200, job_id)
    assert not closes(status)
    job_of(await connection.exchange(post_association(PAIR, JWT)))


async def test_a_job_read_right_after_its_202_is_answered_and_the_request_behind_is_not(
    front: Front, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    connection = await front.connect()
    job_id = job_of(await connection.exchange(post_association(PAIR, JWT)))
    await connection.send(
        get(f"{BASE}/jobs/{job_id}", JWT, request_id="read"),
        post_association(PAIR, JWT, request_id="behind"),
    )
    status = await connection.answer()
    assert (status.status, status.header("x-request-id")) == (200, "read")
    assert status.json()["jobID"] == job_id
    assert closes(status)
    assert await connection.is_closed_by_server()
    await assert_queued_jobs_are_exactly(front, inbox, [job_id])


async def test_a_connection_whose_first_request_is_a_get_still_serves_posts(
    front: Front,
) -> None:
    connection = await front.connect()
    health = await connection.exchange(get("/healthz", request_id="first"))
    assert (health.status, health.header("x-request-id")) == (200, "first")
    first = job_of(await connection.exchange(post_association(PAIR, JWT)))
    await connection.send(
        post_association(PAIR, JWT, request_id="p-1"),
        post_association(INVALID, JWT, request_id="p-2"),
        post_association(PAIR, JWT, request_id="p-3"),
    )
    answers = await connection.answers(3)
    assert [a.header("x-request-id") for a in answers] == ["p-1", "p-2", "p-3"]
    assert [a.status for a in answers] == [202, 400, 202]
    assert len({first, job_of(answers[0]), job_of(answers[2])}) == 3


# bodies framed otherwise ----------------------------------------------------------------------
async def test_a_chunked_first_post_is_acknowledged_and_the_connection_goes_on(
    front: Front, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    connection = await front.connect()
    chunked = await connection.exchange(chunked_post(OTHER_PAIR, "chunked"))
    assert chunked.header("x-request-id") == "chunked"
    jobs = [job_of(chunked)]
    await connection.send(chunked_post(PAIR, "c-1"), post_association(PAIR, JWT, request_id="c-2"))
    answers = await connection.answers(2)
    assert [a.header("x-request-id") for a in answers] == ["c-1", "c-2"]
    assert not any(closes(a) for a in [chunked, *answers])
    jobs.extend(job_of(a) for a in answers)
    items = await inbox.items(len(jobs))
    assert sorted(item.job for item in items) == sorted(jobs)
    chunked_item = next(item for item in items if item.job == jobs[0])
    assert chunked_item.related_id == IP_2


async def test_a_chunked_post_after_a_lane_request_is_acknowledged_then_the_connection_closes(
    front: Front, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    connection = await front.connect()
    first = job_of(await connection.exchange(post_association(PAIR, JWT)))
    await connection.send(
        chunked_post(OTHER_PAIR, "chunked"), post_association(PAIR, JWT, request_id="behind")
    )
    chunked = await connection.answer()
    assert chunked.header("x-request-id") == "chunked"
    assert closes(chunked)
    assert await connection.is_closed_by_server()
    await assert_queued_jobs_are_exactly(front, inbox, [first, job_of(chunked)])


def expecting_head(body: bytes) -> bytes:
    """The head of a ``POST /association`` of ``body`` that waits for ``100 Continue``."""
    return request(
        "POST",
        ASSOCIATION,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Expect", "100-continue"),
            ("x-request-id", "expecting"),
            *JWT.items(),
        ],
    )


async def test_an_expect_100_continue_first_post_is_acknowledged_and_the_connection_goes_on(
    front: Front,
) -> None:
    connection = await front.connect()
    body = orjson.dumps(PAIR)
    await connection.send(expecting_head(body))
    interim = await connection.answer()
    assert interim.status == 100
    answer = await connection.exchange(body)
    assert answer.header("x-request-id") == "expecting"
    job_of(answer)
    assert not closes(answer)
    job_of(await connection.exchange(post_association(PAIR, JWT)))


@pytest.mark.parametrize("lane_request", ["answered", "in flight"])
async def test_an_expect_100_continue_post_after_a_lane_request_is_acknowledged_then_closes(
    front: Front, queue: MemoryJobQueue, lane_request: str
) -> None:
    inbox = await consume(queue)
    connection = await front.connect()
    jobs = []
    if lane_request == "answered":
        jobs.append(job_of(await connection.exchange(post_association(PAIR, JWT))))
    else:
        await connection.send(post_association(PAIR, JWT, request_id="ahead"))
    body = orjson.dumps(PAIR)
    await connection.send(expecting_head(body))
    if lane_request == "in flight":
        ahead = await connection.answer()
        assert ahead.header("x-request-id") == "ahead"
        jobs.append(job_of(ahead))
    interim = await connection.answer()
    assert interim.status == 100
    answer = await connection.exchange(body)
    assert answer.header("x-request-id") == "expecting"
    jobs.append(job_of(answer))
    assert closes(answer)
    assert await connection.is_closed_by_server()
    await assert_queued_jobs_are_exactly(front, inbox, jobs)


# closing --------------------------------------------------------------------------------------
async def test_connection_close_on_a_lane_request_is_answered_then_the_connection_closes(
    front: Front,
) -> None:
    connection = await front.connect()
    job_of(await connection.exchange(post_association(PAIR, JWT)))
    closing = post_association(PAIR, [*JWT.items(), ("Connection", "close")], request_id="last")
    never = [get("/healthz", request_id="never"), post_association(PAIR, JWT)]
    await connection.send(closing, *never)
    answer = await connection.answer()
    assert answer.header("x-request-id") == "last"
    job_of(answer)
    assert (answer.header("Connection") or "").lower() == "close"
    assert await connection.is_closed_by_server()


async def test_connection_close_on_a_first_lane_request_closes_the_connection(
    front: Front,
) -> None:
    connection = await front.connect()
    answer = await connection.exchange(
        post_association(PAIR, [*JWT.items(), ("Connection", "close")])
    )
    job_of(answer)
    assert (answer.header("Connection") or "").lower() == "close"
    assert await connection.is_closed_by_server()


@pytest.mark.parametrize("after_a_lane_request", [False, True])
async def test_an_http_1_0_post_is_acknowledged(front: Front, after_a_lane_request: bool) -> None:
    connection = await front.connect()
    if after_a_lane_request:
        job_of(await connection.exchange(post_association(PAIR, JWT)))
    answer = await connection.exchange(post_association(PAIR, JWT, request_id="old", version="1.0"))
    assert answer.header("x-request-id") == "old"
    job_id = job_of(answer)
    assert answer.header("Location") == f"{BASE}/jobs/{job_id}"
    assert await connection.is_closed_by_server()  # HTTP/1.0 without keep-alive


@pytest.mark.parametrize("pipelined", [True, False])
async def test_a_malformed_request_after_a_lane_request_is_a_400_then_the_connection_closes(
    front: Front, pipelined: bool
) -> None:
    connection = await front.connect()
    lane_request = post_association(PAIR, JWT, request_id="good")
    malformed = b"NOT AN HTTP REQUEST\r\n\r\n"
    if pipelined:
        await connection.send(lane_request, malformed)
        good, bad = await connection.answers(2)
    else:
        good = await connection.exchange(lane_request)
        bad = await connection.exchange(malformed)
    assert good.header("x-request-id") == "good"
    job_of(good)
    assert bad.status == 400
    assert await connection.is_closed_by_server()


async def test_a_malformed_first_request_is_a_400_then_the_connection_closes(
    front: Front,
) -> None:
    connection = await front.connect()
    bad = await connection.exchange(b"NOT AN HTTP REQUEST\r\n\r\n")
    assert bad.status == 400
    assert await connection.is_closed_by_server()


# refusals -------------------------------------------------------------------------------------
async def test_a_wrong_secret_is_refused_401_and_the_connection_goes_on(
    front: Front, api_key: dict[str, str]
) -> None:
    await cached(front, api_key)
    connection = await front.connect()
    job_of(await connection.exchange(post_association(PAIR, api_key)))
    wrong = {**api_key, "api-secret": "not-the-secret"}
    await connection.send(
        post_association(PAIR, wrong, request_id="wrong"),
        post_association(PAIR, api_key, request_id="right"),
    )
    refused, accepted = await connection.answers(2)
    assert refused.header("x-request-id") == "wrong"
    assert error_code_of(refused, 401) == "unauthorized"
    assert refused.header("WWW-Authenticate") is not None
    assert accepted.header("x-request-id") == "right"
    job_of(accepted)


async def test_a_key_without_the_reporter_role_is_refused_403(
    front: Front, store: SqliteStore
) -> None:
    record, secret = new_api_key("bob", ["user"], [], 30, time.time())
    await store.put_api_key(record)
    reader = {"api-key": record.key_id, "api-secret": secret}
    # Once verified (and refused), the key is known without a look-up.
    first = await (await front.connect()).exchange(post_association(PAIR, reader))
    assert error_code_of(first, 403) == "forbidden"
    connection = await front.connect()
    job_of(await connection.exchange(post_association(PAIR, JWT)))
    await connection.send(
        post_association(PAIR, reader, request_id="reader"),
        post_association(PAIR, JWT, request_id="reporter"),
    )
    refused, accepted = await connection.answers(2)
    assert refused.header("x-request-id") == "reader"
    assert error_code_of(refused, 403) == "forbidden"
    assert accepted.header("x-request-id") == "reporter"
    job_of(accepted)


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (
            post_association(b'{"entityID": ', JWT, request_id="refused"),
            400,
            "invalid_json",
        ),
        (
            post_association(INVALID, JWT, request_id="refused"),
            400,
            "invalid_entity_id",
        ),
        (
            post_association(PAIR, request_id="refused"),
            401,
            "unauthorized",
        ),
    ],
    ids=["bad json", "invalid item", "no credentials"],
)
async def test_a_refused_request_gets_the_standard_error_and_the_connection_goes_on(
    front: Front, data: bytes, status: int, code: str
) -> None:
    connection = await front.connect()
    job_of(await connection.exchange(post_association(PAIR, JWT)))
    await connection.send(data, post_association(PAIR, JWT, request_id="next"))
    refused, accepted = await connection.answers(2)
    assert refused.header("x-request-id") == "refused"
    assert error_code_of(refused, status) == code
    assert refused.header("Content-Type") == "application/json"
    assert not closes(refused)
    assert accepted.header("x-request-id") == "next"
    job_of(accepted)


async def test_a_post_of_another_content_type_after_a_lane_request_is_a_415_then_closes(
    front: Front, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    connection = await front.connect()
    first = job_of(await connection.exchange(post_association(PAIR, JWT)))
    await connection.send(
        post_association(PAIR, JWT, request_id="refused", content_type="text/plain"),
        post_association(PAIR, JWT, request_id="behind"),
    )
    refused = await connection.answer()
    assert refused.header("x-request-id") == "refused"
    assert error_code_of(refused, 415) == "unsupported_media_type"
    assert refused.header("Content-Type") == "application/json"
    assert closes(refused)
    assert await connection.is_closed_by_server()
    await assert_queued_jobs_are_exactly(front, inbox, [first])


async def test_a_retry_with_the_same_idempotency_key_answers_the_first_job(
    front: Front, queue: MemoryJobQueue, store: SqliteStore
) -> None:
    inbox = await consume(queue)
    keyed = [*JWT.items(), (HEADER, "retry-1")]
    connection = await front.connect()
    plain = job_of(await connection.exchange(post_association(PAIR, JWT)))
    first = await connection.exchange(post_association(PAIR, keyed))
    job_id = job_of(first)
    assert first.header(REPLAYED_HEADER) is None
    assert not closes(first)
    await inbox.items(2)
    # (until the job is registered, a retry publishes its items again, under the same job)
    await eventually(lambda: store_knows(store, job_id))
    await connection.send(post_association(PAIR, keyed), post_association(PAIR, keyed))
    for retry in await connection.answers(2):
        assert job_of(retry) == job_id
        assert retry.header(REPLAYED_HEADER) == "true"
        assert retry.header("Location") == f"{BASE}/jobs/{job_id}"
        assert not closes(retry)
    reused = await connection.exchange(post_association(OTHER_PAIR, keyed))
    assert error_code_of(reused, 422) == "idempotency_key_reused"
    assert not closes(reused)
    after = await connection.exchange(post_association(OTHER_PAIR, JWT))
    await assert_queued_jobs_are_exactly(front, inbox, [job_of(after)])
    assert plain != job_id


async def test_a_keyed_answer_is_the_same_on_the_lane_as_from_aiohttp(
    front: Front, store: SqliteStore
) -> None:
    # An HTTP/1.0 first request goes to aiohttp as it stands; the lane answers the same retry
    # in HTTP/1.1.
    keyed = [*JWT.items(), (HEADER, "same-answer")]
    first = job_of(await (await front.connect()).exchange(post_association(PAIR, keyed)))
    await eventually(lambda: store_knows(store, first))
    by_aiohttp = await (await front.connect()).exchange(
        post_association(PAIR, keyed, version="1.0")
    )
    by_lane = await (await front.connect()).exchange(post_association(PAIR, keyed))

    assert by_aiohttp.header("Server") == by_lane.header("Server")
    for answer in (by_aiohttp, by_lane):
        assert job_of(answer) == first
        assert answer.header(REPLAYED_HEADER) == "true"
        assert answer.header("Location") == f"{BASE}/jobs/{first}"


async def test_an_invalid_idempotency_key_is_refused_400_and_the_connection_goes_on(
    front: Front, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    connection = await front.connect()
    job_of(await connection.exchange(post_association(PAIR, JWT)))
    invalid = await connection.exchange(post_association(PAIR, [*JWT.items(), (HEADER, "a b")]))
    assert error_code_of(invalid, 400) == "invalid_idempotency_key"
    assert not closes(invalid)
    after = job_of(await connection.exchange(post_association(PAIR, JWT)))
    await inbox.items(1)
    await assert_queued_jobs_are_exactly(front, inbox, [after])


async def test_an_idempotency_key_sent_twice_is_refused_400_by_aiohttp_then_closes(
    front: Front,
) -> None:
    connection = await front.connect()
    job_of(await connection.exchange(post_association(PAIR, JWT)))
    twice = await connection.exchange(
        post_association(PAIR, [*JWT.items(), (HEADER, "k-1"), (HEADER, "k-1")])
    )
    assert error_code_of(twice, 400) == "invalid_idempotency_key"
    assert closes(twice)
    assert await connection.is_closed_by_server()


# the broker -----------------------------------------------------------------------------------
class RefusingQueue(MemoryJobQueue):
    """The in-process queue whose broker confirms nothing."""

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        raise BrokerUnavailable("the broker is unreachable (test)")


@pytest.fixture
async def refusing_queue(unique_name: str) -> AsyncIterator[RefusingQueue]:
    queue = RefusingQueue(Topology(base=unique_name, retry_tiers=FAST_RETRY_TIERS))
    await queue.start()
    yield queue
    await queue.close()


async def assert_refused_503(front: Front, code: str) -> None:
    items = 'ingest_items_acknowledged_total{kind="association"}'
    before = sample(await scrape(front), items)
    connection = await front.connect()
    await connection.send(
        post_association(PAIR, JWT, request_id="r-1"),
        post_association(PAIR, JWT, request_id="r-2"),
    )
    answers = await connection.answers(2)
    assert [a.header("x-request-id") for a in answers] == ["r-1", "r-2"]
    for answer in answers:
        assert error_code_of(answer, 503) == code
        assert answer.header("Retry-After") == "2"  # the publish timeout, rounded up
        assert answer.header("Location") is None
    assert sample(await scrape(front), items) == before


async def test_a_broker_that_confirms_nothing_is_a_503_with_retry_after(
    serve: ServeFront, refusing_queue: RefusingQueue
) -> None:
    front = await serve(refusing_queue)
    await assert_refused_503(front, "broker_unavailable")


async def test_a_full_queue_is_a_503_with_retry_after_and_nothing_is_queued(
    serve: ServeFront, memory_queue: MemoryQueueFactory
) -> None:
    full = await memory_queue(max_length=0)
    front = await serve(full)
    await assert_refused_503(front, "queue_full")
    assert await full.depth() == 0


# shutting down --------------------------------------------------------------------------------
class HeldQueue(MemoryJobQueue):
    """The in-process queue whose broker confirms only while ``confirming`` is set."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(topology)
        self.confirming = asyncio.Event()
        self.waiting = asyncio.Event()

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        self.waiting.set()
        await self.confirming.wait()
        await super().publish(body, **kwargs)


async def test_on_shutdown_a_lane_request_in_flight_is_answered_and_idle_connections_close(
    serve: ServeFront, unique_name: str
) -> None:
    held = HeldQueue(Topology(base=unique_name, retry_tiers=FAST_RETRY_TIERS))
    await held.start()
    try:
        inbox = await consume(held)
        front = await serve(held, shutdown_timeout=2.0)
        never_used = await front.connect()
        idle = await front.connect()
        held.confirming.set()
        acknowledged = [job_of(await idle.exchange(post_association(PAIR, JWT)))]
        held.confirming.clear()
        held.waiting.clear()
        busy = await front.connect()
        await busy.send(post_association(PAIR, JWT, request_id="in-flight"))
        await asyncio.wait_for(held.waiting.wait(), 2.0)

        stopping = asyncio.create_task(front.stop())
        assert await idle.is_closed_by_server(within=1.0)
        assert await never_used.is_closed_by_server(within=1.0)
        assert not stopping.done()
        held.confirming.set()
        answer = await busy.answer()
        assert answer.header("x-request-id") == "in-flight"
        acknowledged.append(job_of(answer))
        assert await busy.is_closed_by_server()
        await asyncio.wait_for(stopping, 2.0)

        items = await inbox.items(len(acknowledged))
        assert sorted(item.job for item in items) == sorted(acknowledged)
    finally:
        await held.close()


async def test_on_shutdown_a_request_held_behind_a_lane_request_in_flight_is_answered(
    serve: ServeFront, unique_name: str
) -> None:
    held = HeldQueue(Topology(base=unique_name, retry_tiers=FAST_RETRY_TIERS))
    await held.start()
    try:
        front = await serve(held, shutdown_timeout=2.0)
        busy = await front.connect()
        await busy.send(
            post_association(PAIR, JWT, request_id="in-flight"),
            get("/healthz", request_id="behind"),
        )
        await asyncio.wait_for(held.waiting.wait(), 2.0)
        stopping = asyncio.create_task(front.stop())
        await asyncio.sleep(0.05)
        held.confirming.set()
        first, second = await busy.answers(2)
        assert (first.header("x-request-id"), second.header("x-request-id")) == (
            "in-flight",
            "behind",
        )
        job_of(first)
        assert second.status == 200
        assert await busy.is_closed_by_server()
        await asyncio.wait_for(stopping, 3.0)
    finally:
        await held.close()


async def test_after_shutdown_no_new_connection_is_served(front: Front) -> None:
    port = front.port
    await front.stop()
    with pytest.raises(OSError):
        await RawConnection.open(port)


# clients of every kind ------------------------------------------------------------------------
@pytest.mark.parametrize("first", ["lane request", "get"])
async def test_requests_sent_in_small_pieces_are_answered(front: Front, first: str) -> None:
    connection = await front.connect()
    opening = (
        post_association(PAIR, JWT, request_id="first")
        if first == "lane request"
        else get("/healthz", request_id="first")
    )
    await connection.send_in_pieces(opening, 7)
    answer = await connection.answer()
    assert (answer.status, answer.header("x-request-id")) == (
        202 if first == "lane request" else 200,
        "first",
    )
    await connection.send_in_pieces(post_association(PAIR, JWT, request_id="second"), 5)
    second = await connection.answer()
    assert second.header("x-request-id") == "second"
    job_of(second)


async def test_a_client_that_stops_sending_gets_the_lanes_answers_then_the_connection_closes(
    front: Front,
) -> None:
    connection = await front.connect()
    job_of(await connection.exchange(post_association(PAIR, JWT)))
    await connection.send(
        post_association(PAIR, JWT, request_id="before"),
        post_association(PAIR, JWT, request_id="last"),
    )
    connection.finish_sending()
    answers = await connection.answers(2)
    assert [a.header("x-request-id") for a in answers] == ["before", "last"]
    assert await connection.is_closed_by_server(within=1.0)


async def test_a_client_that_reads_its_answers_late_gets_them_all_in_order(
    serve: ServeFront,
) -> None:
    # Small socket buffers: the answers fill them while nobody reads, and the server holds
    # what it cannot write yet (reading no more requests meanwhile).
    front = await serve(send_buffer=4096)
    count = 500
    connection = await front.connect(receive_buffer=4096)
    sending = asyncio.create_task(
        connection.send(*(post_association(PAIR, JWT, request_id=f"r{i}") for i in range(count)))
    )
    await asyncio.sleep(0.1)
    answers = await connection.answers(count, within=10.0)
    await sending
    assert [a.header("x-request-id") for a in answers] == [f"r{i}" for i in range(count)]
    assert {a.status for a in answers} == {202}


# logs and metrics -----------------------------------------------------------------------------
async def test_each_lane_request_writes_one_access_line(front: Front) -> None:
    connection = await front.connect()
    with capture_logs() as logs:
        await connection.send(
            *(post_association(PAIR, JWT, request_id=f"log-{i}") for i in range(3))
        )
        answers = await connection.answers(3)
    completed = [line for line in logs if line["event"] == "request.completed"]
    assert [line["request_id"] for line in completed] == ["log-0", "log-1", "log-2"]
    for line, answer in zip(completed, answers, strict=True):
        assert line["job_id"] == job_of(answer)
        assert (line["user_id"], line["method"], line["status"], line["items"]) == (
            "alice",
            "POST",
            202,
            1,
        )
        assert line["path"] == line["route"] == ASSOCIATION
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["log_level"] == "info"
        assert "code" not in line


async def test_lane_requests_are_counted_under_their_route_and_status(front: Front) -> None:
    requests = f'ingest_http_requests_total{{route="{ASSOCIATION}",status="202"}}'
    timed = f'ingest_http_request_seconds_count{{route="{ASSOCIATION}"}}'
    items = 'ingest_items_acknowledged_total{kind="association"}'
    before = await scrape(front)
    connection = await front.connect()
    await connection.send(*(post_association(PAIR, JWT) for _ in range(3)))
    for answer in await connection.answers(3):
        job_of(answer)
    after = await scrape(front)
    for series in (requests, timed, items):
        assert sample(after, series) - sample(before, series) == 3, series


async def test_a_refused_request_writes_one_access_line_and_is_counted_once(
    front: Front,
) -> None:
    series = f'ingest_http_requests_total{{route="{ASSOCIATION}",status="400"}}'
    before = await scrape(front)
    connection = await front.connect()
    with capture_logs() as logs:
        job_of(await connection.exchange(post_association(PAIR, JWT, request_id="ok")))
        refused = await connection.exchange(post_association(INVALID, JWT, request_id="bad"))
    assert refused.status == 400
    completed = [line for line in logs if line["event"] == "request.completed"]
    assert [(line["request_id"], line["status"]) for line in completed] == [
        ("ok", 202),
        ("bad", 400),
    ]
    assert completed[1]["code"] == "invalid_entity_id"
    assert sample(await scrape(front), series) - sample(before, series) == 1
