"""What every benchmark needs: processes it starts and stops, free ports, memory sampling,
medians, unique broker names and API keys."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
FEEDS = ROOT.parent / "shared" / "data" / "feeds"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
CLI = [sys.executable, "-m", "assoc_ingest"]


def amqp_url() -> str:
    return os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class PeakRss:
    """Samples the resident memory of processes every 100 ms; ``peak_mb`` per label."""

    peaks: dict[str, float] = field(default_factory=dict)
    _procs: dict[str, list[psutil.Process]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, label: str, pid: int) -> None:
        self._procs.setdefault(label, []).append(psutil.Process(pid))

    def cpu_seconds(self, label: str) -> float:
        """User + system CPU seconds used so far by the processes watched as ``label``."""
        total = 0.0
        for proc in self._procs.get(label, []):
            times = proc.cpu_times()
            total += times.user + times.system
        return total

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for label, procs in list(self._procs.items()):
                for proc in procs:
                    try:
                        rss = proc.memory_info().rss / 2**20
                    except psutil.Error:
                        continue
                    self.peaks[label] = max(self.peaks.get(label, 0.0), rss)


@contextmanager
def process(
    args: Sequence[str], env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process, wait for its port when given, and stop it afterwards.

    Its standard output and error go to a file, as an operator's log does (a pipe nobody reads
    would stop a process logging at the shipped INFO once the pipe is full); the file's tail is
    quoted when the process does not start."""
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile(prefix="bench-log-") as log:
        proc = subprocess.Popen(list(args), env=full_env, stdout=log, stderr=log, cwd=ROOT)
        try:
            if port is not None:
                try:
                    wait_for_port(port)
                except TimeoutError:
                    proc.kill()
                    proc.wait()
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{args} did not start: {tail}") from None
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def pipeline_env(topology: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's processes: their own queues and data directory, every
    other setting at its shipped default (log level and format, metrics port, durable commits),
    with ``extra`` on top. A benchmark that sets anything else says so in its figure's row."""
    return {
        "AMQP_URL": amqp_url(),
        "INGEST_TOPOLOGY_NAME": topology,
        "INGEST_DATA_DIR": str(data_dir),
        **extra,
    }


def create_key(env: dict[str, str]) -> tuple[str, str]:
    """An API key with the reporter, user and admin roles, made with the CLI."""
    out = subprocess.run(
        [
            *CLI,
            "keys",
            "create",
            "--user",
            "bench",
            "--role",
            "admin",
            "--role",
            "reporter",
            "--role",
            "user",
            "--json",
        ],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        cwd=ROOT,
    ).stdout
    data = json.loads(out)
    return data["apiKey"], data["apiSecret"]


def delete_topology(topology: str) -> None:
    """Remove a benchmark's queues so runs do not leave messages behind."""
    import asyncio

    from workers.queue.base import Topology
    from workers.queue.rabbit import RabbitJobQueue

    async def run() -> None:
        queue = RabbitJobQueue(amqp_url(), Topology(base=topology))
        await queue.start()
        await queue.delete_topology()
        await queue.close()

    asyncio.run(run())
