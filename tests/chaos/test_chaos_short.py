"""The chaos scenario (``bench.chaos``), shortened for CI: 3,000 associations while a worker is
SIGKILLed, the store file is locked for 3 s and the broker is stopped and started again; and
the same on MongoDB (the session's server), where there is no file to lock.

It stops and starts a RabbitMQ node of its own (``bench.private_broker``: its own name, ports
and data directory), never the machine's shared node, which every other process uses.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.private_broker import PrivateRabbitNode

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]


@pytest.fixture(scope="module")
def own_node() -> Iterator[PrivateRabbitNode]:
    """One private node for both runs (each on a topology of its own): it takes seconds to
    start."""
    with PrivateRabbitNode() as node:
        yield node


def _run(command: list[str], faults: tuple[str, ...]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    report = done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "CHAOS PASSED" in done.stdout, report
    for fault in faults:
        assert f" {fault} " in done.stdout, f"{fault} was not injected:\n{report}"


def test_pipeline_loses_and_duplicates_nothing_while_faults_are_injected(
    own_node: PrivateRabbitNode,
) -> None:
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
        "--amqp-url", own_node.amqp_url,
        "--rabbit-node", own_node.name,
    ]  # fmt: skip
    _run(command, ("kill_worker", "lock_store", "stop_broker"))


@pytest.mark.mongodb
def test_on_mongodb_worker_kills_leave_every_pair_sent_once_with_one_submission(
    own_node: PrivateRabbitNode, mongodb_url: str
) -> None:
    """Two worker SIGKILLs mid-stream: a transaction cut off by a kill leaves nothing, and the
    redelivered message is applied once (the checks include ``submissions`` exactly 1 for every
    pair sent once)."""
    command = [
        sys.executable, "-m", "bench.chaos",
        "--associations", "3000",
        "--batch", "100",
        "--duration", "30",
        "--worker-kills", "2",
        "--broker-stops", "1",
        "--broker-down", "3",
        "--store-lock", "0",
        "--entity-wait", "20",
        "--drain-timeout", "60",
        "--settle-timeout", "30",
        "--amqp-url", own_node.amqp_url,
        "--rabbit-node", own_node.name,
        "--mongodb-url", mongodb_url,
    ]  # fmt: skip
    _run(command, ("kill_worker", "stop_broker"))
