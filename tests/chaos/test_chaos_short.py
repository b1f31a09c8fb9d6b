"""The chaos scenario (``bench.chaos``), shortened for CI: 3,000 associations and their entities
while a worker, the broker node and the front are SIGKILLed (and started again) and the store
file is locked for 3 s; the client retries with idempotency keys. And the same on MongoDB (the
session's server), with two worker kills and no file to lock.

``bench.chaos`` kills a RabbitMQ node of its own (``bench.private_broker``: its own name, ports
and data directory), never the machine's shared node, which every other process uses.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]


def _run(command: list[str], faults: tuple[str, ...]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    report = done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "CHAOS PASSED" in done.stdout, report
    for fault in faults:
        assert f" {fault} " in done.stdout, f"{fault} was not injected:\n{report}"


def test_pipeline_loses_nothing_and_counts_nothing_twice_while_faults_are_injected() -> None:
    command = [
        sys.executable, "-m", "bench.chaos",
        "--associations", "3000",
        "--batch", "100",
        "--duration", "30",
        "--worker-kills", "1",
        "--broker-kills", "1",
        "--broker-down", "3",
        "--front-kills", "1",
        "--store-lock", "3",
        "--entity-wait", "20",
        "--retry-for", "60",
        "--drain-timeout", "40",
        "--settle-timeout", "30",
    ]  # fmt: skip
    _run(command, ("kill_worker", "lock_store", "kill_broker", "kill_front"))


@pytest.mark.mongodb
def test_on_mongodb_worker_kills_leave_every_pair_sent_once_with_one_submission(
    mongodb_url: str,
) -> None:
    """Two worker SIGKILLs and a broker kill mid-stream: a transaction cut off by a kill leaves
    nothing, and the redelivered message is applied once (the checks include ``submissions``
    exactly 1 for every pair sent once)."""
    command = [
        sys.executable, "-m", "bench.chaos",
        "--associations", "3000",
        "--batch", "100",
        "--duration", "30",
        "--worker-kills", "2",
        "--broker-kills", "1",
        "--broker-down", "3",
        "--front-kills", "0",
        "--store-lock", "0",
        "--entity-wait", "20",
        "--retry-for", "60",
        "--drain-timeout", "60",
        "--settle-timeout", "30",
        "--mongodb-url", mongodb_url,
    ]  # fmt: skip
    _run(command, ("kill_worker", "kill_broker"))
