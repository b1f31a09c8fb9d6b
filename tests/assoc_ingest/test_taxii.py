"""``assoc-ingest taxii poll`` against a real TAXII 2.1 server: medallion (the OASIS reference
server, memory backend) started here on its own port, with a real Poison Ivy report posted to
it by the OASIS client (taxii2-client), polled back in pages into the real front."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from taxii2client.v21 import Collection as TaxiiCollection
from typer.testing import CliRunner

from assoc_ingest.cli import app
from assoc_ingest.cli.taxii import _poll
from assoc_ingest.taxii import PollState, TaxiiError
from bench.common import free_port
from tests.assoc_ingest.conftest import Front
from tests.stix_files import objects
from tests.workers.helpers import wait_for_job

USER, PASSWORD = "admin", "Password0"
PAGE = 40


@dataclass(frozen=True)
class TaxiiServer:
    discovery: str
    api_root: str
    collection_id: str

    def add(self, stix_objects: list[dict[str, Any]]) -> None:
        collection = TaxiiCollection(
            f"{self.api_root}collections/{self.collection_id}/", user=USER, password=PASSWORD
        )
        status = collection.add_objects({"objects": stix_objects})
        assert status.status == "complete" and status.failure_count == 0


@pytest.fixture
def taxii_server(tmp_path: Path) -> Iterator[TaxiiServer]:
    """medallion on a free port, one empty readable and writable collection."""
    port = free_port()
    root = f"http://127.0.0.1:{port}/api1/"
    collection_id = str(uuid.uuid4())
    data = {
        "/discovery": {"title": "test", "default": root, "api_roots": [root]},
        "api1": {
            "information": {
                "title": "api1",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 100 * 1024 * 1024,
            },
            "status": [],
            "collections": [
                {
                    "id": collection_id,
                    "title": "reports",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(tmp_path / "data.json"),
        },
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": PAGE},
    }
    (tmp_path / "medallion.json").write_text(json.dumps(config))
    medallion = Path(sys.executable).parent / "medallion"
    proc = subprocess.Popen(
        [str(medallion), "--port", str(port), str(tmp_path / "medallion.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    discovery = f"http://127.0.0.1:{port}/taxii2/"
    try:
        deadline = time.monotonic() + 30
        while True:
            if _answers(discovery):
                break
            assert proc.poll() is None, "medallion exited"
            assert time.monotonic() < deadline, "medallion did not start"
            time.sleep(0.1)
        yield TaxiiServer(discovery, root, collection_id)
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    credentials = b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        url,
        headers={
            "Accept": "application/taxii+json;version=2.1",
            "Authorization": f"Basic {credentials}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


async def test_a_poll_submits_every_page_and_a_rerun_submits_only_what_was_added(
    taxii_server: TaxiiServer, front: Front, tmp_path: Path
) -> None:
    report = objects("oasis_poisonivy.json")
    taxii_server.add(report)
    state = PollState(tmp_path / "state.json")

    async with front.ingest_client() as client:
        first = await _poll(
            taxii_server.discovery, "reports", user=USER, password=PASSWORD, state=state,
            limit=1000, client=client, quiet=True,
        )  # fmt: skip
    assert first["objects"] == len(report) == 155
    assert first["pages"] == len(first["jobs"]) == 4  # 40 a page
    jobs = [await wait_for_job(front.store, job) for job in first["jobs"]]
    assert sum(job.counts.get("rejected", 0) for job in jobs) == 0
    # Relationships of a later page found their indicators and malware in earlier pages:
    # no object of the report ended as a dangling reference.
    assert first["notRepresented"]  # attack patterns and the like: with their reasons
    assert "dangling_reference" not in first["notRepresented"]
    assert json.loads(state.path.read_text())  # the poll's end is remembered

    more = [
        {"type": "ipv4-addr", "spec_version": "2.1", "id": f"ipv4-addr--{uuid.uuid4()}",
         "value": "198.51.100.77"},
    ]  # fmt: skip
    taxii_server.add(more)
    async with front.ingest_client() as client:
        second = await _poll(
            taxii_server.discovery, "reports", user=USER, password=PASSWORD,
            state=PollState(state.path), limit=1000, client=client, quiet=True,
        )  # fmt: skip
    assert second["objects"] == 1 and len(second["jobs"]) == 1
    assert second["addedAfter"] == first["addedAfterNext"]
    job = await wait_for_job(front.store, second["jobs"][0])
    assert (job.total, job.counts.get("stored")) == (1, 1)

    # A page of which nothing is represented is accounted for, and the poll goes on.
    taxii_server.add([next(o for o in report if o["type"] == "attack-pattern") | {
        "id": f"attack-pattern--{uuid.uuid4()}"}])  # fmt: skip
    async with front.ingest_client() as client:
        third = await _poll(
            taxii_server.discovery, "reports", user=USER, password=PASSWORD,
            state=PollState(state.path), limit=1000, client=client, quiet=True,
        )  # fmt: skip
    assert (third["objects"], third["jobs"]) == (1, [])
    assert third["notRepresented"] == {"unsupported_type": 1}
    assert third["addedAfterNext"] != second["addedAfterNext"]


async def test_a_poll_that_lost_its_state_sends_the_same_keys_and_gets_the_first_jobs(
    taxii_server: TaxiiServer, front: Front, tmp_path: Path
) -> None:
    taxii_server.add(objects("oasis_poisonivy.json"))
    polls = []
    for state in ("first.json", "lost.json"):
        async with front.ingest_client() as client:
            poll = await _poll(
                taxii_server.discovery, "reports", user=USER, password=PASSWORD,
                state=PollState(tmp_path / state), limit=1000, client=client, quiet=True,
            )  # fmt: skip
        for job in poll["jobs"]:
            await wait_for_job(front.store, job)
        polls.append(poll)

    first, again = polls
    assert again["objects"] == first["objects"] == 155
    assert again["jobs"] == first["jobs"]  # Idempotency-Key: each page answered its first job


def test_a_poll_without_submit_accounts_for_the_new_objects_and_remembers_nothing(
    taxii_server: TaxiiServer, tmp_path: Path
) -> None:
    taxii_server.add(objects("oasis_poisonivy.json"))
    state = tmp_path / "state.json"
    result = CliRunner().invoke(
        app,
        ["taxii", "poll", taxii_server.discovery, "--collection", taxii_server.collection_id,
         "--user", USER, "--password", PASSWORD, "--state", str(state), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["objects"], summary["pages"]) == (155, 4)
    assert sum(summary["outcomes"].values()) >= 155
    assert not state.exists()


def test_wrong_credentials_or_an_unknown_collection_are_one_line_and_exit_1(
    taxii_server: TaxiiServer, tmp_path: Path
) -> None:
    runner = CliRunner()
    state = ["--state", str(tmp_path / "s.json")]
    refused = runner.invoke(
        app,
        ["taxii", "poll", taxii_server.discovery, "--collection", "reports",
         "--user", USER, "--password", "wrong", *state],
    )  # fmt: skip
    unknown = runner.invoke(
        app,
        ["taxii", "poll", taxii_server.discovery, "--collection", "nope",
         "--user", USER, "--password", PASSWORD, *state],
    )  # fmt: skip
    unreachable = runner.invoke(
        app, ["taxii", "poll", f"http://127.0.0.1:{free_port()}/taxii2/", "--collection", "x"]
    )
    for result, words in (
        (refused, "refused the credentials"),
        (unknown, "no collection 'nope'"),
        (unreachable, "cannot be reached"),
    ):
        assert result.exit_code == 1
        assert words in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_state_file_that_is_not_json_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "state.json"
    broken.write_text("{")
    with pytest.raises(TaxiiError, match="cannot be read"):
        PollState(broken)
