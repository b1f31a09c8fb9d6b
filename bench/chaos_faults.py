"""The processes of the chaos scenario and the faults injected into them.

``Pipeline`` runs the front and the workers as ``python -m assoc_ingest`` subprocesses whose
logs go to files of their own in the run's directory, which the checks read afterwards. The faults:
``kill_worker`` (SIGKILL, then a fresh worker in its place), ``kill_front`` (SIGKILL, then a
fresh front on the same port), ``kill_broker`` (SIGKILL of the scenario's own RabbitMQ node,
``bench.private_broker``, then the same node again with its data) and ``lock_store``
(``BEGIN EXCLUSIVE`` on the embedded store's file from a foreign connection: the store is
unavailable to every process for that long).
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
from bench.private_broker import PrivateRabbitNode

__all__ = [
    "FaultRecord",
    "Pipeline",
    "kill_broker",
    "list_queues",
    "lock_store",
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

    front_restarts: int = 0

    def start(self) -> None:
        self._start_front()
        self.worker_procs = [self._spawn(f"worker-{i}", "worker") for i in range(self.workers)]

    def _start_front(self) -> None:
        self.front = self._spawn("front", "api")
        try:
            wait_for_port(self.port, timeout=60)
        except TimeoutError:
            log = self.front.log.read_text()[-2000:]
            raise RuntimeError(f"the front did not start: {log}") from None

    def kill_front(self) -> tuple[int, int]:
        """SIGKILL the front and start a fresh one on the same port; (old PID, new PID)."""
        old = self.front
        assert old is not None
        old.popen.send_signal(signal.SIGKILL)
        old.popen.wait()
        self.retired.append(old)
        self._start_front()
        self.front_restarts += 1
        assert self.front is not None
        return old.popen.pid, self.front.popen.pid

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


def list_queues(node: PrivateRabbitNode, prefix: str) -> dict[str, tuple[int, int, int]]:
    """Queues whose name starts with ``prefix``: name -> (ready, unacked, consumers)."""
    out = node.ctl(
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


def kill_broker(node: PrivateRabbitNode, down: float) -> str:
    """SIGKILL the node's Erlang VM, ``down`` seconds of no broker, then start it again with
    its data (blocking)."""
    node.kill()
    time.sleep(down)
    began = time.monotonic()
    node.start()
    return f"SIGKILL, restarted after {down:.0f} s, serving {time.monotonic() - began:.1f} s later"


def lock_store(path: Path, seconds: float) -> str:
    """Hold an exclusive lock on the store file for ``seconds`` (blocking)."""
    asked = time.time()
    taken, released = hold_exclusive_lock(path, seconds)
    return f"lock waited {taken - asked:.1f} s, held {released - taken:.1f} s"
