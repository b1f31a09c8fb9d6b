"""An operator's mistakes with the long-running processes end in one clear line and a
non-zero exit, never a traceback; a second worker on one machine finds its own metrics port."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.assoc_ingest.cli.operator import CLI, ROOT, assert_one_line_mistake, cli_env, run_cli


@contextmanager
def busy_ports(count: int = 1) -> Iterator[list[int]]:
    """``count`` consecutive localhost ports someone else listens on."""
    for _ in range(50):
        with ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            first.listen()
            start = first.getsockname()[1]
            try:
                for port in range(start + 1, start + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
                    sock.listen()
            except OSError:
                continue
            yield list(range(start, start + count))
            return
    raise AssertionError("no run of free ports found")


def test_api_without_a_broker_url_says_so(tmp_path: Path) -> None:
    result = run_cli("api", env=cli_env(tmp_path))
    assert_one_line_mistake(result, "AMQP_URL")


def test_worker_without_a_broker_url_says_so(tmp_path: Path) -> None:
    result = run_cli("worker", env=cli_env(tmp_path))
    assert_one_line_mistake(result, "AMQP_URL")


def test_api_on_a_port_in_use_says_so(tmp_path: Path, amqp_url: str) -> None:
    with busy_ports() as (port,):
        env = cli_env(tmp_path, AMQP_URL=amqp_url, INGEST_TOPOLOGY_NAME=f"busy-{port}")
        result = run_cli("api", "--port", str(port), env=env, timeout=30)
    assert_one_line_mistake(result, f"127.0.0.1:{port}", "already in use", "--port")


def test_dev_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    with busy_ports() as (port,):
        result = run_cli("dev", "--port", str(port), env=cli_env(tmp_path), timeout=30)
    assert_one_line_mistake(result, f"127.0.0.1:{port}", "already in use")


def test_invalid_settings_are_named_in_one_line(tmp_path: Path) -> None:
    result = run_cli("dev", env=cli_env(tmp_path, INGEST_PORT="eighty"))
    assert_one_line_mistake(result, "invalid settings", "port")


@pytest.mark.rabbitmq
def test_a_second_worker_takes_the_next_free_metrics_port(tmp_path: Path, amqp_url: str) -> None:
    with busy_ports() as (taken,):
        env = cli_env(
            tmp_path,
            AMQP_URL=amqp_url,
            INGEST_TOPOLOGY_NAME=f"metrics-{taken}",
            INGEST_LOG_LEVEL="INFO",
        )
        proc = subprocess.Popen(
            [*CLI, "worker", "--metrics-port", str(taken)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + 30
            event: dict[str, object] = {}
            while time.monotonic() < deadline and event.get("event") != "worker.metrics_serving":
                line = proc.stderr.readline()
                assert line, "the worker exited"
                event = json.loads(line)
        finally:
            proc.terminate()
            proc.wait(30)
    assert event["event"] == "worker.metrics_serving"
    assert event["asked"] == taken
    assert isinstance(event["port"], int) and taken < event["port"] <= taken + 15


def test_a_worker_whose_metrics_ports_are_all_taken_says_how_to_choose_one(
    tmp_path: Path,
) -> None:
    with busy_ports(16) as ports:
        env = cli_env(tmp_path, AMQP_URL="amqp://guest:guest@127.0.0.1:1/")
        result = run_cli("worker", "--metrics-port", str(ports[0]), env=env, timeout=30)
    assert_one_line_mistake(result, "--metrics-port", "INGEST_METRICS_PORT")


def test_submitting_to_a_front_that_is_not_there_fails_at_once(tmp_path: Path) -> None:
    lines = tmp_path / "associations.ndjson"
    lines.write_text('{"entityID": "x", "relatedEntityID": "y"}\n' * 3)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = run_cli("submit", str(lines), env=cli_env(tmp_path, INGEST_PORT=str(port)))
    assert time.monotonic() - started < 20
    line = assert_one_line_mistake(result, f"cannot reach http://127.0.0.1:{port}")
    assert line.endswith("connection refused")
    assert "rejected" not in result.stdout


def test_a_file_of_another_feed_names_what_was_expected(tmp_path: Path) -> None:
    feeds = ROOT.parent / "shared" / "data" / "feeds"
    result = run_cli("import", "misp", str(feeds / "threatfox.json"), env=cli_env(tmp_path))
    assert_one_line_mistake(result, "threatfox.json is not a misp file", "expected a MISP event")
    result = run_cli("import", "feodo", str(feeds / "ipblocklist.csv"), env=cli_env(tmp_path))
    assert_one_line_mistake(result, "expected Feodo Tracker's JSON blocklist", "comma-separated")


def test_an_invalid_value_given_to_id_is_one_line(tmp_path: Path) -> None:
    result = run_cli("id", "Host", "example.com", env=cli_env(tmp_path))
    assert_one_line_mistake(result, "Host is a kind; its entity types are domain, hostname")
