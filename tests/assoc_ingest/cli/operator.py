"""Running the real ``assoc-ingest`` command in a subprocess, as an operator would, and what
an operator's mistake must look like: one line on standard error, a non-zero exit status, no
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

CLI = [sys.executable, "-m", "assoc_ingest"]
ROOT = Path(__file__).resolve().parents[3]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a command: no broker or MongoDB unless given, quiet JSON logs, the
    embedded store under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "MONGODB_URL")}
    env.update(
        INGEST_DATA_DIR=str(tmp_path / "var"),
        INGEST_LOG_FORMAT="json",
        INGEST_LOG_LEVEL="WARNING",
        INGEST_METRICS_PORT="0",
    )
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_mistake(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with one line on stderr naming ``words``; that line."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
