"""``assoc-ingest api``: an operator's mistake is one line and a non-zero exit; ``--processes``
runs several front processes on one port, each answering with its own broker connection.
``api``, ``worker`` and ``dev``: an invalid setting is one line and exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from assoc_ingest.cli import app
from schemas import entity_id
from tests.assoc_ingest.deployment import CLI, Deployment


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert all(word in lines[0] for word in words), lines[0]


@pytest.mark.rabbitmq
def test_fewer_than_one_process_is_one_line_and_a_non_zero_exit(
    amqp_url: str, tmp_path: Path
) -> None:
    env = {**_python_env(), "AMQP_URL": amqp_url, "INGEST_DATA_DIR": str(tmp_path)}
    _one_line_error(_run("api", "--processes", "0", env=env), "processes")


def test_the_api_without_a_broker_url_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    env = {**_python_env(), "INGEST_DATA_DIR": str(tmp_path)}
    _one_line_error(_run("api", env=env), "AMQP_URL")


@pytest.mark.rabbitmq
def test_a_busy_port_is_one_line_and_a_non_zero_exit(amqp_url: str, tmp_path: Path) -> None:
    with _listening() as port:
        env = {**_python_env(), "AMQP_URL": amqp_url, "INGEST_DATA_DIR": str(tmp_path)}
        _one_line_error(_run("api", "--port", str(port), env=env), str(port))
        _one_line_error(_run("api", "--port", str(port), "--processes", "2", env=env), str(port))


@pytest.fixture
def deployment(amqp_url: str, unique_name: str, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(amqp_url, unique_name, tmp_path)
    try:
        yield deployment
    finally:
        deployment.close()


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_several_front_processes_share_the_port_and_stop_together(
    deployment: Deployment,
) -> None:
    deployment.create_key()
    api = deployment.start_api("--processes", "3")
    children = psutil.Process(api.pid).children()
    assert len(children) == 3

    def post(n: int) -> str:
        body = {
            "entityID": entity_id("asn", "15169"),
            "relatedEntityID": entity_id("ip", f"203.0.113.{n % 250 + 1}"),
        }
        job_id: str = deployment.post("/association", body)["jobID"]
        return job_id

    with ThreadPoolExecutor(16) as pool:
        job_ids = list(pool.map(post, range(300)))

    assert len(set(job_ids)) == 300
    assert deployment.stop(api) == 0
    assert not any(child.is_running() and child.status() != "zombie" for child in children)


def _python_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "MONGODB_URL")}


class _listening:
    """A port held by a plain listening socket (no SO_REUSEPORT), as another program holds it."""

    def __enter__(self) -> int:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        port: int = self._sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


@pytest.mark.parametrize("command", ["api", "worker", "dev"])
def test_an_idempotency_window_longer_than_the_job_ttl_is_one_clear_line(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGEST_JOB_TTL", "3600")
    monkeypatch.setenv("INGEST_IDEMPOTENCY_WINDOW", "7200")

    result = CliRunner().invoke(app, [command])

    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: invalid settings: INGEST_IDEMPOTENCY_WINDOW (7200 s) must not exceed "
        "INGEST_JOB_TTL (3600 s)"
    ]
    assert "Traceback" not in result.output


def test_a_malformed_setting_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_PORT", "eighty")

    result = CliRunner().invoke(app, ["api"])

    assert result.exit_code == 2
    assert result.output.startswith("error: invalid settings: port: ")
