"""``assoc-ingest import stix FILE``: every object's account, NDJSON bodies the front accepts,
and ``--submit`` of the file as one job to the real front."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from assoc_ingest.cli import app
from schemas.http import AssociationBody, EntityBody
from tests.assoc_ingest.conftest import Front
from tests.stix_files import path
from tests.workers.helpers import wait_for_job

ESET = "eset_moustachedbouncer_misp2stix21.json"


def test_import_prints_the_account_of_every_object() -> None:
    result = CliRunner().invoke(app, ["import", "stix", str(path(ESET)), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    objects = counts["objects"]
    assert objects["total"] == 276
    assert objects["entity"] + objects["association"] + objects["not_represented"] == 276
    assert sum(counts["notRepresented"].values()) == objects["not_represented"]
    assert counts["associationsByType"]["File Download"] == 8

    text = CliRunner().invoke(app, ["import", "stix", str(path(ESET))])
    assert text.exit_code == 0
    assert text.output.startswith(f"{ESET}: 276 objects: ")


def test_import_out_writes_bodies_the_front_accepts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["import", "stix", str(path(ESET)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    entities = [json.loads(line) for line in (out / "entities.ndjson").read_text().splitlines()]
    links = [json.loads(line) for line in (out / "associations.ndjson").read_text().splitlines()]
    assert entities and links
    for body in entities:
        EntityBody.model_validate(body)
    for body in links:
        AssociationBody.model_validate(body)


async def test_import_submit_sends_the_file_as_one_job(front: Front) -> None:
    args = ["import", "stix", str(path(ESET)), "--submit", "--json"]
    args += ["--url", str(front.client.make_url("/")).rstrip("/")]
    env = {"INGEST_API_KEY": front.headers["api-key"]}
    env["INGEST_API_SECRET"] = front.headers["api-secret"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    # The front runs in this process: its log lines share the captured output.
    line = next(ln for ln in result.output.splitlines() if ln.startswith('{"file"'))
    submitted = json.loads(line)["submitted"]
    assert submitted["objects"]["total"] == 276
    job = await wait_for_job(front.store, submitted["jobID"])
    assert job.total == submitted["accepted"] and job.counts.get("rejected", 0) == 0

    # The same file again sends the same Idempotency-Key: the first job, queued once.
    again = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    fresh = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--fresh-keys"], env=env)
    assert again.exit_code == fresh.exit_code == 0
    assert _submitted(again.output)["jobID"] == submitted["jobID"]
    assert _submitted(fresh.output)["jobID"] != submitted["jobID"]


def _submitted(output: str) -> dict[str, Any]:
    line = next(ln for ln in output.splitlines() if ln.startswith('{"file"'))
    answer: dict[str, Any] = json.loads(line)["submitted"]
    return answer


def test_a_file_that_is_not_stix_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "indicator"}')
    result = CliRunner().invoke(app, ["import", "stix", str(bad)])
    assert result.exit_code == 1
    assert "cannot import" in result.output and "bundle" in result.output
    assert len(result.output.strip().splitlines()) == 1
