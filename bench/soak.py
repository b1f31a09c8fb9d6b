"""Soak (``make soak``): the whole pipeline at half its measured maximum rate for ten minutes.

On a RabbitMQ node of its own (``bench.private_broker``) it starts the front and two workers on a
fresh embedded store, stores the entities of the workload (``bench.chaos_workload``: unique
``Address -> Host`` pairs), then measures the maximum rate of ``POST /association`` through
that pipeline with wrk (one new ``Idempotency-Key`` a request, as clients that retry send) and
runs at half of it, one wrk run a minute so that each minute has its own latency figures. Every
30 s it samples the resident memory of each process (and the work queue's depth). At the end it
prints two tables, latency per minute and memory per sample, and checks that

- memory is flat after the first minute: each process's last RSS is less than 10 % above its
  RSS at one minute (so that start-up, caches filling and the first connections are excluded);
- no process logged an error (``error``/``critical`` events, or lines that are not JSON: a
  traceback printed by a library);
- every request was answered 2xx and the queue did not grow without bound (it is empty, or
  draining, once the load stops).

Exit status 0 only when every check holds.

    python -m bench.soak                        # 10 minutes (make soak)
    python -m bench.soak --minutes 2 --calibrate 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.chaos_faults import Pipeline, list_queues
from bench.chaos_workload import build_workload
from bench.common import create_key, free_port, pipeline_env, unique
from bench.private_broker import PrivateRabbitNode
from bench.wrk import WrkResult, run_wrk
from workers.queue.base import Topology

PATH_SINGLE = "/api/ingest/v1/association"
PATH_ENTITIES = "/api/ingest/v1/entities"
KEY_HEADER = "Idempotency-Key"
CONNECTIONS = 32
SAMPLE_SECONDS = 30.0
MAX_GROWTH = 0.10


@dataclass
class Sample:
    at: float
    rss_mb: dict[str, float]
    queue_depth: int | None


@dataclass
class Sampler:
    """Samples every ``SAMPLE_SECONDS`` the RSS of each named process and the queue depth."""

    pids: dict[str, int]
    node: PrivateRabbitNode
    work_queue: str
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _origin: float = 0.0

    def start(self) -> None:
        self._origin = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _run(self) -> None:
        self._sample()
        taken = 1
        while not self._stop.wait(
            max(0.0, self._origin + taken * SAMPLE_SECONDS - time.monotonic())
        ):
            self._sample()
            taken += 1

    def _sample(self) -> None:
        at = time.monotonic() - self._origin
        rss: dict[str, float] = {}
        for label, pid in self.pids.items():
            try:
                rss[label] = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                rss[label] = float("nan")
        try:
            depth: int | None = sum(
                ready + unacked
                for name, (ready, unacked, _) in list_queues(self.node, self.work_queue).items()
                if name == self.work_queue
            )
        except RuntimeError:
            depth = None
        self.samples.append(Sample(at, rss, depth))


def _post_entities(url: str, headers: dict[str, str], bodies: list[dict[str, Any]]) -> None:
    """Store the workload's entities through the front, in bulk requests of 1,000."""
    import urllib.request

    for start in range(0, len(bodies), 1000):
        request = urllib.request.Request(
            url + PATH_ENTITIES,
            data=orjson.dumps(bodies[start : start + 1000]),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            if response.status != 202:
                raise RuntimeError(f"entities refused: HTTP {response.status}")


def _log_problems(pipeline: Pipeline) -> dict[str, int]:
    """Error events and non-JSON lines of every process log, by process and kind."""
    problems: dict[str, int] = {}
    procs = [
        *pipeline.worker_procs,
        *pipeline.retired,
        *([pipeline.front] if pipeline.front else []),
    ]
    for proc in procs:
        for line in proc.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                kind = "not JSON"
            else:
                level = str(event.get("level", "")) if isinstance(event, dict) else ""
                if level not in ("error", "critical"):
                    continue
                kind = f"{level}: {event.get('event')}"
            key = f"{proc.label}: {kind}"
            problems[key] = problems.get(key, 0) + 1
    return problems


@dataclass
class SoakResult:
    max_rate: float
    target_rate: float
    delay_ms: int
    minutes: list[WrkResult]
    samples: list[Sample]
    problems: dict[str, int]
    depth_after: int | None

    def growth(self) -> dict[str, float]:
        """Each process's last RSS over its RSS at one minute (the first sample at or after)."""
        later = [s for s in self.samples if s.at >= 60.0] or self.samples
        first, last = later[0], self.samples[-1]
        return {label: last.rss_mb[label] / first.rss_mb[label] - 1 for label in first.rss_mb}

    def checks(self) -> list[tuple[str, bool, str]]:
        errors = sum(m.errors for m in self.minutes)
        growth = self.growth()
        return [
            (
                f"memory flat after the first minute (growth < {MAX_GROWTH:.0%})",
                all(g < MAX_GROWTH for g in growth.values()),
                ", ".join(f"{label} {g:+.1%}" for label, g in growth.items()),
            ),
            ("no error lines in any log", not self.problems, str(self.problems or "none")),
            ("every request answered 2xx", errors == 0, f"{errors} errors"),
            (
                "work queue drained within 60 s of the end",
                self.depth_after == 0,
                f"{self.depth_after} messages",
            ),
        ]

    def render(self) -> str:
        lines = [
            f"soak: maximum {self.max_rate:,.0f} req/s (POST /association with Idempotency-Key, "
            f"front + 2 workers, c={CONNECTIONS}); target half: {self.target_rate:,.0f} req/s "
            f"(wrk delay {self.delay_ms} ms a connection)",
            "",
            "| minute | requests | req/s | p50 ms | p99 ms | p99.9 ms | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, m in enumerate(self.minutes, start=1):
            lines.append(
                f"| {n} | {m.requests:,} | {m.rate:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
                f"{m.p999_ms:.2f} | {m.errors} |"
            )
        labels = list(self.samples[0].rss_mb) if self.samples else []
        lines += [
            "",
            "| s | " + " | ".join(f"{label} RSS MB" for label in labels) + " | queue depth |",
            "|---" * (len(labels) + 2) + "|",
        ]
        for s in self.samples:
            rss = " | ".join(f"{s.rss_mb[label]:.0f}" for label in labels)
            lines.append(f"| {s.at:.0f} | {rss} | {s.queue_depth} |")
        lines.append("")
        for name, ok, detail in self.checks():
            lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
        lines += ["", "SOAK PASSED" if self.ok else "SOAK FAILED"]
        return "\n".join(lines)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks())


def _fixed_delay(url: str, bodies: list[bytes], headers: dict[str, str], rate: float) -> int:
    """The per-connection wrk delay that gives about ``rate`` requests/s (one correction after
    a short probe)."""
    delay = int(CONNECTIONS * 1000 / rate)
    probe = run_wrk(
        url,
        PATH_SINGLE,
        bodies,
        headers,
        seconds=5,
        connections=CONNECTIONS,
        delay_ms=delay,
        key_header=KEY_HEADER,
    )
    if probe.rate > 0:
        latency_ms = CONNECTIONS * 1000 / probe.rate - delay
        delay = max(int(CONNECTIONS * 1000 / rate - latency_ms), 0)
    return delay


def run_soak(minutes: int, calibrate: float, associations: int) -> SoakResult:
    workload = build_workload(associations, batch=200)
    bodies = [orjson.dumps(pair.body()) for pair in workload.pairs.values()]
    with (
        tempfile.TemporaryDirectory(prefix="soak-") as tmp,
        PrivateRabbitNode(prefix="soak") as node,
    ):
        work_dir = Path(tmp)
        topology = unique("soak")
        port = free_port()
        env = pipeline_env(
            topology, work_dir / "data", INGEST_PORT=str(port), AMQP_URL=node.amqp_url
        )
        key, secret = create_key(env)
        headers = {"api-key": key, "api-secret": secret, "Content-Type": "application/json"}
        url = f"http://127.0.0.1:{port}"
        pipeline = Pipeline(env, work_dir, port)
        try:
            pipeline.start()
            assert pipeline.front is not None
            _post_entities(url, headers, list(workload.entities.values()))
            names = Topology(base=topology)
            _drained(node, names.work_queue, within=120.0)
            at_max = run_wrk(
                url,
                PATH_SINGLE,
                bodies,
                headers,
                seconds=calibrate,
                connections=CONNECTIONS,
                key_header=KEY_HEADER,
            )
            target = at_max.rate / 2
            delay = _fixed_delay(url, bodies, headers, target)
            pids = {"front": pipeline.front.popen.pid}
            pids.update({p.label: p.popen.pid for p in pipeline.worker_procs})
            sampler = Sampler(pids, node, names.work_queue)
            sampler.start()
            results = [
                run_wrk(
                    url,
                    PATH_SINGLE,
                    bodies,
                    headers,
                    seconds=60,
                    connections=CONNECTIONS,
                    delay_ms=delay,
                    key_header=KEY_HEADER,
                )
                for _ in range(minutes)
            ]
            sampler.stop()
            depth_after = _drained(node, names.work_queue, within=60.0)
        finally:
            pipeline.stop()
        return SoakResult(
            at_max.rate,
            target,
            delay,
            results,
            sampler.samples,
            _log_problems(pipeline),
            depth_after,
        )


def _drained(node: PrivateRabbitNode, work_queue: str, within: float) -> int | None:
    """The work queue's depth once it is empty, or after ``within`` seconds."""
    deadline = time.monotonic() + within
    depth: int | None = None
    while True:
        queues = list_queues(node, work_queue)
        ready, unacked, _ = queues.get(work_queue, (0, 0, 0))
        depth = ready + unacked
        if depth == 0 or time.monotonic() > deadline:
            return depth
        time.sleep(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=int, default=10, help="minutes at half the maximum")
    parser.add_argument(
        "--calibrate", type=float, default=20.0, help="seconds of the maximum-rate run"
    )
    parser.add_argument(
        "--associations", type=int, default=200_000, help="unique pairs the requests cycle"
    )
    args = parser.parse_args(argv)
    result = run_soak(args.minutes, args.calibrate, args.associations)
    print(result.render(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
