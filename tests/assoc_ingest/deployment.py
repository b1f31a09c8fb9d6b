"""A real deployment for black-box tests: ``assoc-ingest api`` and ``assoc-ingest worker``
processes on RabbitMQ (a topology of the test's own, deleted afterwards) and the embedded store
in the test's directory, driven over HTTP and the CLI only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from bench.common import free_port
from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue

CLI = [sys.executable, "-m", "assoc_ingest"]
BASE = "/api/ingest/v1"


class Deployment:
    """Processes of one deployment; ``close`` stops them all and deletes the topology."""

    def __init__(self, amqp_url: str, topology: str, data_dir: Path, **settings: str) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "MONGODB_URL"},
            "AMQP_URL": amqp_url,
            "INGEST_TOPOLOGY_NAME": topology,
            "INGEST_DATA_DIR": str(data_dir),
            "INGEST_PORT": str(self.port),
            "INGEST_METRICS_PORT": "0",
            "INGEST_LOG_LEVEL": "WARNING",
            "INGEST_LOG_FORMAT": "json",
            **settings,
        }
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.headers: dict[str, str] = {}

    # processes ------------------------------------------------------------------------------
    def _start(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen([*CLI, *args], env=self.env, stdout=log, stderr=log)

    def start_api(self, *args: str) -> subprocess.Popen[bytes]:
        self.api = self._start("api", ["api", *args])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.api.poll() is None, f"api exited at start: {self.log('api')}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return self.api
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the api does not listen: {self.log('api')}")

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        worker = self._start(f"worker-{len(self.workers)}", ["worker", *args])
        self.workers.append(worker)
        return worker

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        for proc in [*self.workers, *([self.api] if self.api else [])]:
            self.stop(proc)
        asyncio.run(self._delete_topology())

    async def _delete_topology(self) -> None:
        queue = RabbitJobQueue(self.amqp_url, Topology(base=self.topology))
        await queue.start()
        try:
            await queue.delete_topology()
        finally:
            await queue.close()

    # the CLI and HTTP -----------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def create_key(self, user: str = "alice", *roles: str) -> dict[str, str]:
        """An API key made with ``keys create``; its headers become the default ones."""
        role_args = [arg for role in roles or ("reporter", "user") for arg in ("--role", role)]
        done = self.cli("keys", "create", "--user", user, *role_args, "--json")
        assert done.returncode == 0, done.stderr
        created = json.loads(done.stdout)
        self.headers = {"api-key": created["apiKey"], "api-secret": created["apiSecret"]}
        return self.headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {**(self.headers if headers is None else headers)}
        if data is not None:
            sent["Content-Type"] = content_type
        request = Request(self.base + BASE + path, data=data, method=method, headers=sent)
        try:
            with urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        status, answer = self.request("POST", path, body, headers)
        assert status == 202, (status, answer)
        return answer

    def job(self, job_id: str, within: float = 5.0) -> dict[str, Any]:
        """``GET /jobs/{id}``; the front registers an accepted job in the background, so a
        404 right after the 202 is asked again for up to ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            status, answer = self.request("GET", f"/jobs/{job_id}")
            if status != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status == 200, (status, answer)
        result: dict[str, Any] = answer
        return result

    def wait_done(self, job_ids: Sequence[str], within: float = 30.0) -> list[dict[str, Any]]:
        """The jobs once each is ``done`` or ``failed``."""
        deadline = time.monotonic() + within
        done: dict[str, dict[str, Any]] = {}
        while True:
            for job_id in job_ids:
                if job_id not in done:
                    job = self.job(job_id)
                    if job["status"] in ("done", "failed"):
                        done[job_id] = job
            jobs = [done.get(job_id) or self.job(job_id) for job_id in job_ids]
            if all(job["status"] in ("done", "failed") for job in jobs):
                return jobs
            if time.monotonic() > deadline:
                pending = [job for job in jobs if job["status"] not in ("done", "failed")]
                raise AssertionError(f"{len(pending)} jobs not done, e.g. {pending[:2]}")
            time.sleep(0.2)

    def dead_letters(self) -> list[dict[str, Any]]:
        done = self.cli("dlq", "list", "--json", "--limit", "100")
        assert done.returncode == 0, done.stderr
        letters: list[dict[str, Any]] = json.loads(done.stdout)
        return letters
