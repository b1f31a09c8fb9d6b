"""The bulk submit client and ``assoc-ingest submit``/``import --submit``, against a small front.

The front here is a minimal aiohttp app that keeps the bulk endpoint contract (NDJSON in, 202
with ``accepted``/``rejected[{index, error}]``/``jobID`` out, 503 + ``Retry-After`` when asked
to): it tests the client's chunking, retry and line mapping, not the real front.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from typer.testing import CliRunner

from assoc_ingest.cli import app
from assoc_ingest.client import IngestClient, SubmitError, Unreachable

ERRORS = {
    401: ("unauthorised", "Bad credentials."),
    413: ("body_too_large", "The body is larger than 16 MiB."),
}


@dataclass
class FakeFront:
    """Answers bulk posts; ``unavailable`` first answers are 503 with ``Retry-After: 2``."""

    unavailable: int = 0
    status: int | None = None
    requests: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = field(default_factory=list)

    async def bulk(self, request: web.Request) -> web.Response:
        lines = (await request.read()).decode().splitlines()
        items = [json.loads(line) for line in lines]
        self.requests.append((request.match_info["kind"], dict(request.headers), items))
        if self.unavailable > 0:
            self.unavailable -= 1
            return web.json_response(
                {"error": {"code": "unavailable", "message": "Try later.", "errorID": "x"}},
                status=503,
                headers={"Retry-After": "2"},
            )
        if self.status is not None:
            code, message = ERRORS[self.status]
            error = {"code": code, "message": message, "errorID": "x"}
            return web.json_response({"error": error}, status=self.status)
        rejected = [
            {"index": index, "error": {"code": "invalid_entity", "message": "Bad item."}}
            for index, item in enumerate(items)
            if item.get("bad")
        ]
        return web.json_response(
            {
                "message": "acknowledged",
                "jobID": str(uuid.uuid4()),
                "accepted": len(items) - len(rejected),
                "rejected": rejected,
            },
            status=202,
        )

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_post("/api/ingest/v1/{kind}", self.bulk)
        application.router.add_get("/api/ingest/v1/association-types", self.association_types)
        return application

    async def association_types(self, request: web.Request) -> web.Response:
        return web.json_response([])


StartServer = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def front(aiohttp_server: StartServer) -> tuple[FakeFront, str]:
    fake = FakeFront()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/")).rstrip("/")


class Sleeps:
    """Records the waits the client asks for instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def ndjson(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_chunks_are_posted_and_rejections_map_to_file_lines(
    front: tuple[FakeFront, str], tmp_path: Path
) -> None:
    fake, url = front
    source = ndjson(
        tmp_path / "a.ndjson",
        ['{"n": 1}', '{"n": 2}', '{"n": 3, "bad": true}', "", '{"n": 5}', '{"n": 6, "bad": true}'],
    )
    done: list[int] = []
    async with IngestClient(url, api_key="k", api_secret="s") as client:
        summary = await client.submit_ndjson(
            source, "associations", chunk_items=2, concurrency=1, progress=done.append
        )
    assert summary.accepted == 3
    assert [line for line, _ in summary.rejected] == [3, 6]
    assert summary.rejected[0][1] == {"code": "invalid_entity", "message": "Bad item."}
    assert len(summary.job_ids) == 3
    assert [[item["n"] for item in items] for _, _, items in fake.requests] == [[1, 2], [3, 5], [6]]
    assert done == [2, 2, 1]
    kind, headers, _ = fake.requests[0]
    assert kind == "associations"
    assert headers["Content-Type"] == "application/x-ndjson"
    assert (headers["api-key"], headers["api-secret"]) == ("k", "s")


async def test_a_503_is_retried_after_the_retry_after_delay(front: tuple[FakeFront, str]) -> None:
    fake, url = front
    fake.unavailable = 1
    sleeps = Sleeps()
    async with IngestClient(url, token="jwt", sleep=sleeps) as client:
        summary = await client.submit_ndjson(['{"n": 1}', '{"n": 2}'], "entities")
    assert summary.accepted == 2 and summary.rejected == []
    assert sleeps.delays == [2.0]
    assert len(fake.requests) == 2
    assert fake.requests[1][1]["Authorization"] == "Bearer jwt"


async def test_a_chunk_still_unavailable_after_every_attempt_is_reported_by_line(
    front: tuple[FakeFront, str],
) -> None:
    fake, url = front
    fake.unavailable = 100
    sleeps = Sleeps()
    async with IngestClient(url, max_attempts=3, sleep=sleeps) as client:
        summary = await client.submit_ndjson(['{"n": 1}', '{"n": 2}'], "associations")
    assert summary.accepted == 0
    assert [line for line, _ in summary.rejected] == [1, 2]
    assert summary.rejected[0][1]["code"] == "not_submitted"
    assert len(fake.requests) == 3
    assert sleeps.delays == [2.0, 2.0]


async def test_an_unreachable_front_fails_fast_and_nothing_counts_as_rejected() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    async with IngestClient(f"http://127.0.0.1:{port}", max_attempts=3, sleep=sleeps) as client:
        with pytest.raises(Unreachable) as refused:
            await client.submit_ndjson(['{"n": 1}'], "associations")
    assert str(refused.value) == f"cannot reach http://127.0.0.1:{port}: connection refused"
    assert sleeps.delays == []  # no retry against a front that is not there


async def test_bad_credentials_stop_the_submission(front: tuple[FakeFront, str]) -> None:
    fake, url = front
    fake.status = 401
    async with IngestClient(url, api_key="k", api_secret="wrong") as client:
        with pytest.raises(SubmitError, match="HTTP 401: Bad credentials"):
            await client.submit_ndjson(['{"n": 1}'] * 10, "associations", chunk_items=1)


async def test_a_refused_chunk_marks_each_of_its_lines(front: tuple[FakeFront, str]) -> None:
    fake, url = front
    fake.status = 413
    async with IngestClient(url) as client:
        summary = await client.submit_ndjson(['{"n": 1}', "", '{"n": 3}'], "entities")
    assert [line for line, _ in summary.rejected] == [1, 3]
    assert summary.rejected[0][1]["code"] == "body_too_large"


def test_key_and_token_together_are_refused() -> None:
    with pytest.raises(SubmitError, match="not both"):
        IngestClient("http://127.0.0.1:1", api_key="k", api_secret="s", token="t")


async def test_submit_command_prints_totals_rejected_lines_and_jobs(
    front: tuple[FakeFront, str], tmp_path: Path
) -> None:
    fake, url = front
    source = ndjson(tmp_path / "a.ndjson", ['{"n": 1}', '{"n": 2, "bad": true}', '{"n": 3}'])
    args = ["submit", str(source), "--url", url, "--chunk", "2", "--json"]
    env = {"INGEST_API_KEY": "k", "INGEST_API_SECRET": "s"}
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 1, result.output  # a rejected line makes the exit code 1
    summary = json.loads(result.output)
    assert summary["accepted"] == 2
    assert summary["rejected"] == [
        {"line": 2, "error": {"code": "invalid_entity", "message": "Bad item."}}
    ]
    assert len(summary["jobIDs"]) == 2
    assert fake.requests[0][1]["api-key"] == "k"


async def test_submit_command_prints_a_readable_summary(
    front: tuple[FakeFront, str], tmp_path: Path
) -> None:
    _, url = front
    source = ndjson(tmp_path / "e.ndjson", ['{"n": 1}'])
    args = ["submit", str(source), "--kind", "entities", "--url", url]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert "entities: accepted 1, rejected 0" in result.output
    assert "jobs: " in result.output


async def test_import_submit_sends_entities_before_associations(
    front: tuple[FakeFront, str], feeds_dir: Path
) -> None:
    fake, url = front
    feed = feeds_dir / "feodo.json"
    args = ["import", "feodo", str(feed), "--submit", "--url", url, "--token", "t", "--json"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["submitted"]["entities"]["accepted"] == 13
    assert counts["submitted"]["associations"]["accepted"] == 13
    assert [kind for kind, _, _ in fake.requests] == ["entities", "associations"]
    assert {item["associationType"] for item in fake.requests[1][2]} == {
        "ASN to Address",
        "DNS PTR Record",
        "c2-of",
    }
    assert {item["source"] for item in fake.requests[1][2]} == {"feodo"}


def test_submit_command_refuses_a_key_and_a_token_together(tmp_path: Path) -> None:
    source = ndjson(tmp_path / "a.ndjson", ['{"n": 1}'])
    args = ["submit", str(source), "--api-key", "k", "--api-secret", "s", "--token", "t"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "not both" in result.output


async def test_a_missing_file_is_an_os_error(front: tuple[FakeFront, str], tmp_path: Path) -> None:
    async with IngestClient(front[1]) as client:
        with pytest.raises(FileNotFoundError):
            await client.submit_ndjson(tmp_path / "missing.ndjson", "associations")


# idempotency keys ------------------------------------------------------------------------------
def _keys(fake: FakeFront) -> list[str]:
    return [headers["Idempotency-Key"] for _, headers, _ in fake.requests]


async def test_every_chunk_has_its_own_key_and_a_retry_reuses_it(
    front: tuple[FakeFront, str],
) -> None:
    fake, url = front
    fake.unavailable = 1
    async with IngestClient(url, sleep=Sleeps()) as client:
        await client.submit_ndjson(
            ['{"n": 1}', '{"n": 2}', '{"n": 3}'], "associations", chunk_items=2, concurrency=1
        )

    first, retry, second = _keys(fake)
    assert first == retry != second
    assert all(1 <= len(key) <= 255 and key.isascii() and " " not in key for key in _keys(fake))


async def test_the_same_content_sends_the_same_keys_and_other_content_other_keys(
    front: tuple[FakeFront, str], tmp_path: Path
) -> None:
    fake, url = front
    lines = [f'{{"n": {n}}}' for n in range(5)]
    source = ndjson(tmp_path / "a.ndjson", lines)

    async def keys_of(source: Any, **options: Any) -> list[str]:
        fake.requests.clear()
        async with IngestClient(url) as client:
            await client.submit_ndjson(source, "associations", concurrency=1, **options)
        return _keys(fake)

    from_file = await keys_of(source, chunk_items=2)
    assert await keys_of(source, chunk_items=2) == from_file
    assert await keys_of(list(lines), chunk_items=2) == from_file
    assert await keys_of([*lines[:4], '{"n": 99}'], chunk_items=2) != from_file
    assert set(await keys_of(source, chunk_items=3)).isdisjoint(from_file)
    assert set(await keys_of(source, chunk_items=2, fresh_keys=True)).isdisjoint(from_file)


async def test_an_import_run_again_sends_the_same_keys(
    front: tuple[FakeFront, str], feeds_dir: Path
) -> None:
    fake, url = front
    args = ["import", "feodo", str(feeds_dir / "feodo.json"), "--submit", "--url", url, "--json"]

    runs = []
    for _ in range(2):
        fake.requests.clear()
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
        assert result.exit_code == 0, result.output
        runs.append(_keys(fake))

    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 2  # one chunk of entities, one of associations
