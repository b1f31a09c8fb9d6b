"""``make run`` (``assoc-ingest dev``): a first start prints a key and a curl example that
works as printed, and the association it creates is readable from both ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import free_port
from schemas import entity_id


def read_banner(proc: subprocess.Popen[str], timeout: float = 30.0) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "dev exited before printing its example"
        lines.append(line.rstrip("\n"))
        if line.startswith("sleep 2; curl"):
            return lines
    raise AssertionError(f"no example printed: {lines}")


def test_the_printed_curl_example_works_and_the_association_reads_from_both_ends(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "MONGODB_URL")}
    env["INGEST_LOG_LEVEL"] = "WARNING"
    proc = subprocess.Popen(
        [sys.executable, "-m", "assoc_ingest", "dev", "--port", str(port),
         "--data-dir", str(tmp_path / "var")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        banner = read_banner(proc)
        commands = [line for line in banner if line.startswith(("curl ", "sleep "))]
        result = subprocess.run(
            ["bash", "-c", "\n".join(commands)], capture_output=True, text=True, timeout=60
        )
        answers = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        key = next(line.split()[-1] for line in banner if "api-key:" in line)
        secret = next(line.split()[-1] for line in banner if "api-secret:" in line)
        asn_side = subprocess.run(
            ["curl", "-s", "-H", f"api-key: {key}", "-H", f"api-secret: {secret}",
             f"http://127.0.0.1:{port}/api/ingest/v1/entity/{entity_id('asn', 'AS15169')}"
             "/associations?direction=out"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(30)

    assert [a["message"] for a in answers[:3]] == ["acknowledged"] * 3
    [from_ip] = answers[3]["items"]
    assert from_ip["otherEntity"]["id"] == entity_id("asn", "AS15169")
    assert from_ip["associationName"] == "ASN to Address"
    [from_asn] = json.loads(asn_side.stdout)["items"]
    assert from_asn["otherEntity"]["id"] == entity_id("ip", "8.8.8.8")
    assert proc.returncode == 0
