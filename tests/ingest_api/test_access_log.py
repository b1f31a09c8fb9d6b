"""At the default level (INFO) the front writes one JSON line per request: its access line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ingest_api.support import BASE

ROOT = Path(__file__).resolve().parents[2]

# A front on the in-process queue and the embedded store, logging and served as
# ``ingest_api.main`` does (the fast lane in front, no aiohttp access log); it prints the
# answers it got on stdout, its logs go to stderr.
PROGRAM = """
import asyncio, json, socket, sys
from aiohttp import ClientSession, web
from ingest_api.app import create_app
from ingest_api.fast_lane import FastLaneSite
from tests.ingest_api.support import ASN, BASE, IP, bearer, make_settings
from workers.backends import assemble_backends
from workers.ground.logs import configure_logging

settings = make_settings(data_dir=sys.argv[1])
configure_logging(settings.log_level, "json")
REQUESTS = [
    ("req-202", {"entityID": ASN, "relatedEntityID": IP}, bearer(user="alice")),
    ("req-400", {"entityID": "asn-nope", "relatedEntityID": IP}, bearer(user="alice")),
    ("req-401", {"entityID": ASN, "relatedEntityID": IP}, {}),
]

async def main():
    backends = assemble_backends(settings, memory_queue_ok=True)
    app = create_app(settings, queue=backends.queue, store=backends.store)
    runner = web.AppRunner(app, handler_cancellation=False, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await FastLaneSite(runner, sock).start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{BASE}/association"
    answers = {}
    async with ClientSession() as client:
        for request_id, body, headers in REQUESTS:
            headers = {**headers, "x-request-id": request_id}
            async with client.post(url, json=body, headers=headers) as response:
                answers[request_id] = [response.status, await response.json()]
    await runner.cleanup()
    print(json.dumps(answers))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def front_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[Any]]:
    """The answers to a 202, a 400 and a 401, and every line the front logged meanwhile."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("AMQP_URL")}
    env.pop("INGEST_LOG_LEVEL", None)  # the shipped default
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path_factory.mktemp("front"))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    return json.loads(done.stdout), lines


def _lines_of(lines: list[Any], request_id: str) -> list[Any]:
    return [line for line in lines if line.get("request_id") == request_id]


@pytest.mark.parametrize("request_id", ["req-202", "req-400", "req-401"])
def test_each_request_is_one_line_at_info(
    front_run: tuple[dict[str, Any], list[Any]], request_id: str
) -> None:
    _, lines = front_run
    (line,) = _lines_of(lines, request_id)
    assert (line["event"], line["level"]) == ("request.completed", "info")
    assert (line["method"], line["path"]) == ("POST", f"{BASE}/association")
    assert isinstance(line["duration_ms"], float)
    assert line["timestamp"].endswith("Z")


def test_the_line_of_an_accepted_job_names_its_job_and_user(
    front_run: tuple[dict[str, Any], list[Any]],
) -> None:
    answers, lines = front_run
    status, body = answers["req-202"]
    (line,) = _lines_of(lines, "req-202")
    assert status == line["status"] == 202
    assert (line["job_id"], line["user_id"], line["items"]) == (body["jobID"], "alice", 1)
    assert "code" not in line


def test_the_line_of_a_refused_request_has_its_error_code(
    front_run: tuple[dict[str, Any], list[Any]],
) -> None:
    answers, lines = front_run
    (bad,) = _lines_of(lines, "req-400")
    (anonymous,) = _lines_of(lines, "req-401")
    assert answers["req-400"][0] == bad["status"] == 400
    assert bad["code"] == answers["req-400"][1]["error"]["code"] == "invalid_entity_id"
    assert bad["user_id"] == "alice"
    assert answers["req-401"][0] == anonymous["status"] == 401
    assert anonymous["code"] == "unauthorized"
    assert anonymous["user_id"] is None and anonymous["job_id"] is None
    assert bad["job_id"] is None


def test_no_other_line_is_written_while_the_requests_are_handled(
    front_run: tuple[dict[str, Any], list[Any]],
) -> None:
    _, lines = front_run
    completed = [line for line in lines if line["event"] == "request.completed"]
    assert len(completed) == 3
    started = lines.index(completed[0])
    assert lines[started:] == completed
