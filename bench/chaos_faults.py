"""The processes of the chaos scenario and the faults injected into them.

``Pipeline`` runs the front and the workers as ``python -m assoc_ingest`` subprocesses whose
logs go to files (``bench.common.process`` pipes stderr without reading it, which would stall a
process that logs many warnings, as every process here does while faults last). The faults:
``kill_worker`` (SIGKILL, then a fresh worker in its place), ``stop_broker`` (``rabbitmqctl
stop_app`` / ``start_app`` on the given node) and ``lock_store`` (``BEGIN EXCLUSIVE`` on the
embedded store's file from a foreign connection).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.chaos_store import hold_exclusive_lock
from bench.common import CLI, ROOT, wait_for_port

__all__ = [
    "FaultRecord",
    "Pipeline",
    "list_queues",
    "lock_store",
    "rabbitmqctl",
    "stop_broker",
]


@dataclass(slots=True)
class FaultRecord:
    """One injected fault: what, when it began and ended (seconds since the stream began)."""

    name: str
    began: float
    ended: float
    detail: str = ""


@dataclass
class _Proc:
    label: str
    popen: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes]


@dataclass
class Pipeline:
    """The front and ``workers`` worker processes on ``env``, logging under ``run_dir``."""

    env: dict[str, str]
    run_dir: Path
    port: int
    workers: int = 2
    front: _Proc | None = None
    worker_procs: list[_Proc] = field(default_factory=list)
    retired: list[_Proc] = field(default_factory=list)
    _spawned: int = 0

    def start(self) -> None:
        self.front = self._spawn("front", "api")
        try:
            wait_for_port(self.port, timeout=60)
        except TimeoutError:
            log = self.front.log.read_text()[-2000:]
            raise RuntimeError(f"the front did not start: {log}") from None
        self.worker_procs = [self._spawn(f"worker-{i}", "worker") for i in range(self.workers)]

    def kill_worker(self, index: int) -> tuple[int, int]:
        """SIGKILL worker ``index`` and start a fresh one in its place; (old PID, new PID)."""
        old = self.worker_procs[index]
        old.popen.send_signal(signal.SIGKILL)
        old.popen.wait()
        self.retired.append(old)
        new = self._spawn(f"worker-{index}", "worker")
        self.worker_procs[index] = new
        return old.popen.pid, new.popen.pid

    def stop(self, timeout: float = 40.0) -> dict[str, int | None]:
        """SIGTERM every process still running (workers first), wait, SIGKILL stragglers;
        the exit code of each by label."""
        procs = [*self.worker_procs, *([self.front] if self.front else [])]
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.terminate()
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                codes[proc.label] = proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
                codes[proc.label] = None
        for proc in [*procs, *self.retired]:
            proc.handle.close()
        return codes

    def events(self) -> Counter[str]:
        """Log events of every process, by ``event`` name (``message.retrying`` also by
        dependency); lines that are not JSON (aio-pika's own logging, tracebacks) are counted
        as ``other lines``."""
        counts: Counter[str] = Counter()
        procs = [*self.worker_procs, *self.retired, *([self.front] if self.front else [])]
        for proc in procs:
            for line in proc.log.read_text(errors="replace").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    counts[f"{proc.label.split('-')[0]}: other lines"] += 1
                    continue
                if not isinstance(event, dict):
                    continue
                name = str(event.get("event", "?"))
                if "dependency" in event:
                    name = f"{name}[{event['dependency']}]"
                counts[f"{proc.label.split('-')[0]}: {name}"] += 1
        return counts

    def _spawn(self, label: str, command: str) -> _Proc:
        self._spawned += 1
        log = self.run_dir / f"{label}.{self._spawned}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [*CLI, command],
            env={**os.environ, **self.env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return _Proc(label, popen, log, handle)


def rabbitmqctl(node: str | None, *args: str) -> str:
    """Run ``rabbitmqctl [-n node] args``; its output, or ``RuntimeError`` when it fails."""
    command = ["rabbitmqctl", *(["-n", node] if node else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def list_queues(node: str | None, prefix: str) -> dict[str, tuple[int, int, int]]:
    """Queues whose name starts with ``prefix``: name -> (ready, unacked, consumers)."""
    out = rabbitmqctl(
        node,
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
    )
    found: dict[str, tuple[int, int, int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].startswith(prefix):
            found[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
    return found


def stop_broker(node: str | None, down: float) -> str:
    """``stop_app``, ``down`` seconds of no broker, then ``start_app`` (blocking)."""
    began = time.monotonic()
    rabbitmqctl(node, "stop_app")
    stopped = time.monotonic()
    time.sleep(down)
    rabbitmqctl(node, "start_app")
    return (
        f"stop_app took {stopped - began:.1f} s, "
        f"start_app {time.monotonic() - stopped - down:.1f} s"
    )


def lock_store(path: Path, seconds: float) -> str:
    """Hold an exclusive lock on the store file for ``seconds`` (blocking)."""
    asked = time.time()
    taken, released = hold_exclusive_lock(path, seconds)
    return f"lock waited {taken - asked:.1f} s, held {released - taken:.1f} s"
