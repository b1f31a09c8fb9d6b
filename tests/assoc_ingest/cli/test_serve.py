"""``api``, ``worker`` and ``dev``: an invalid setting is one line and exit status 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from assoc_ingest.cli import app


@pytest.mark.parametrize("command", ["api", "worker", "dev"])
def test_an_idempotency_window_longer_than_the_job_ttl_is_one_clear_line(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGEST_JOB_TTL", "3600")
    monkeypatch.setenv("INGEST_IDEMPOTENCY_WINDOW", "7200")

    result = CliRunner().invoke(app, [command])

    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: invalid settings: INGEST_IDEMPOTENCY_WINDOW (7200 s) must not exceed "
        "INGEST_JOB_TTL (3600 s)"
    ]
    assert "Traceback" not in result.output


def test_a_malformed_setting_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_PORT", "eighty")

    result = CliRunner().invoke(app, ["api"])

    assert result.exit_code == 2
    assert result.output.startswith("error: invalid settings: port: ")
