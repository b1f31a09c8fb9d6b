"""The chaos scenario (``bench.chaos``), shortened for CI: 3,000 associations while a worker is
SIGKILLed, the store file is locked for 3 s and the broker is stopped and started again.

It stops and starts a RabbitMQ application (``rabbitmqctl stop_app``): by default the machine's
default node, which CI runs alone. Elsewhere point it at a broker of its own with
``CHAOS_AMQP_URL`` and ``CHAOS_RABBIT_NODE`` (and ``AMQP_URL`` for the reachability check).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]


def test_pipeline_loses_and_duplicates_nothing_while_faults_are_injected(amqp_url: str) -> None:
    url = os.environ.get("CHAOS_AMQP_URL", amqp_url)
    node = os.environ.get("CHAOS_RABBIT_NODE")
    command = [
        sys.executable, "-m", "bench.chaos",
        "--associations", "3000",
        "--batch", "100",
        "--duration", "30",
        "--worker-kills", "1",
        "--broker-stops", "1",
        "--broker-down", "3",
        "--store-lock", "3",
        "--entity-wait", "20",
        "--drain-timeout", "40",
        "--settle-timeout", "30",
        "--amqp-url", url,
        *(["--rabbit-node", node] if node else []),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    report = done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "CHAOS PASSED" in done.stdout, report
    for fault in ("kill_worker", "lock_store", "stop_broker"):
        assert f" {fault} " in done.stdout, f"{fault} was not injected:\n{report}"
