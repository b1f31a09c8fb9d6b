"""The commands a user runs, end to end: ``keys create``, ``import --submit``, ``types add`` and
``submit`` against a real front and a real worker process on RabbitMQ and the embedded store."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

from bench.common import free_port
from schemas import entity_id
from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue

CLI = [sys.executable, "-m", "assoc_ingest"]

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


@dataclass
class Pipeline:
    env: dict[str, str]
    base: str
    key: str
    secret: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def get(self, path: str) -> Any:
        request = Request(
            self.base + path, headers={"api-key": self.key, "api-secret": self.secret}
        )
        with urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def wait_done(self, job_ids: list[str], timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            jobs = [self.get(f"/api/ingest/v1/jobs/{job}") for job in job_ids]
            if all(job["status"] in ("done", "failed") for job in jobs):
                return jobs
            assert time.monotonic() < deadline, f"jobs not done: {jobs}"
            time.sleep(0.2)


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the process exited at start"
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def delete_topology(amqp_url: str, name: str) -> None:
    async def run() -> None:
        queue = RabbitJobQueue(amqp_url, Topology(base=name))
        await queue.start()
        await queue.delete_topology()
        await queue.close()

    asyncio.run(run())


@pytest.fixture
def pipeline(amqp_url: str, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    port = free_port()
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "INGEST_TOPOLOGY_NAME": unique_name,
        "INGEST_DATA_DIR": str(tmp_path / "data"),
        "INGEST_PORT": str(port),
        "INGEST_METRICS_PORT": "0",
        "INGEST_TYPES_REFRESH_SECONDS": "1",
        "INGEST_LOG_LEVEL": "WARNING",
    }
    created = subprocess.run(
        [*CLI, "keys", "create", "--user", "ops", "--role", "admin", "--role", "reporter",
         "--role", "user", "--json"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    key = json.loads(created.stdout)
    procs = [
        subprocess.Popen([*CLI, "api"], env=env, stderr=subprocess.DEVNULL),
        subprocess.Popen([*CLI, "worker"], env=env, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_for_port(port, procs[0])
        yield Pipeline(env, f"http://127.0.0.1:{port}", key["apiKey"], key["apiSecret"])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        delete_topology(amqp_url, unique_name)


def test_an_imported_feed_is_stored_and_readable_from_both_ends(
    pipeline: Pipeline, feeds_dir: Path
) -> None:
    feodo = feeds_dir / "feodo.json"
    auth = ["--url", pipeline.base, "--api-key", pipeline.key, "--api-secret", pipeline.secret]
    result = pipeline.cli("import", "feodo", str(feodo), "--submit", "--json", *auth)
    assert result.returncode == 0, result.stderr
    submitted = json.loads(result.stdout)["submitted"]
    job_ids = submitted["entities"]["jobIDs"] + submitted["associations"]["jobIDs"]

    jobs = pipeline.wait_done(job_ids)

    assert all(job["status"] == "done" for job in jobs)
    associations = submitted["associations"]["accepted"]
    assert sum(jobs[-1]["counts"].values()) == associations
    record = json.loads(feodo.read_text())[0]
    ip_id = entity_id("ip", record["ip_address"])
    asn_id = entity_id("asn", str(record["as_number"]))
    incoming = pipeline.get(f"/api/ingest/v1/entity/{ip_id}/associations?direction=in")["items"]
    assert [(i["otherEntity"]["id"], i["associationName"]) for i in incoming] == [
        (asn_id, "ASN to Address")
    ]
    outgoing = pipeline.get(f"/api/ingest/v1/entity/{asn_id}/associations?direction=out")["items"]
    assert ip_id in {item["otherEntity"]["id"] for item in outgoing}


def test_a_custom_type_added_with_the_cli_is_used_by_submit(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    domain, ip = entity_id("domain", "example.org"), entity_id("ip", "203.0.113.10")
    entities = tmp_path / "entities.ndjson"
    entities.write_text(
        '{"type": "domain", "attributes": {"domain": "example.org"}}\n'
        '{"type": "ip", "attributes": {"ip": "203.0.113.10"}}\n'
    )
    associations = tmp_path / "associations.ndjson"
    line = {"entityID": domain, "relatedEntityID": ip, "associationType": "Host Resolves To"}
    associations.write_text(json.dumps(line) + "\n")
    auth = ["--url", pipeline.base, "--api-key", pipeline.key, "--api-secret", pipeline.secret]

    refused = pipeline.cli("submit", str(associations), "--json", *auth)
    added = pipeline.cli(
        "types", "add", "Host Resolves To", "--primary", "Host", "--non-primary", "Address"
    )
    time.sleep(2.5)  # fronts and workers reload custom types every INGEST_TYPES_REFRESH_SECONDS
    sent_entities = pipeline.cli("submit", str(entities), "--kind", "entities", "--json", *auth)
    accepted = pipeline.cli("submit", str(associations), "--json", *auth)

    assert refused.returncode == 1
    assert json.loads(refused.stdout)["rejected"][0]["error"]["code"] == "unknown_association_type"
    assert added.returncode == 0, added.stderr
    assert sent_entities.returncode == 0, sent_entities.stderr
    assert accepted.returncode == 0, accepted.stderr
    [job] = pipeline.wait_done(json.loads(accepted.stdout)["jobIDs"])
    assert job["counts"]["stored"] == 1
    [item] = pipeline.get(f"/api/ingest/v1/entity/{ip}/associations")["items"]
    assert item["associationName"] == "Host Resolves To"


def _misp_resolution(feeds_dir: Path) -> tuple[str, str]:
    """A (domain, ip) pair the ESET event links with ``resolved-to``."""
    event = json.loads((feeds_dir / "misp-moustachedbouncer.event.json").read_text())
    objects = {obj["uuid"]: obj for obj in event["response"][0]["Event"]["Object"]}

    def value(obj: dict[str, Any], relation: str) -> str | None:
        found = [a["value"] for a in obj["Attribute"] if a["object_relation"] == relation]
        return found[0] if found else None

    for obj in objects.values():
        for reference in obj.get("ObjectReference", []):
            target = objects.get(reference["referenced_uuid"])
            if reference["relationship_type"] == "resolved-to" and target is not None:
                domain, ip = value(obj, "domain"), value(target, "ip")
                if domain and ip:
                    return domain, ip
    raise AssertionError("no resolved-to reference")


def test_an_import_uses_custom_types_waits_and_sums_its_jobs_up(
    pipeline: Pipeline, feeds_dir: Path, tmp_path: Path
) -> None:
    auth = ["--api-key", pipeline.key, "--api-secret", pipeline.secret]  # --url: INGEST_PORT
    added = pipeline.cli(
        "types", "add", "A Record", "--primary", "Host", "--non-primary", "Address"
    )
    assert added.returncode == 0, added.stderr
    time.sleep(2.5)  # fronts and workers reload custom types every INGEST_TYPES_REFRESH_SECONDS
    rejects, errors = tmp_path / "rejects.ndjson", tmp_path / "errors.ndjson"
    misp = feeds_dir / "misp-moustachedbouncer.event.json"

    result = pipeline.cli(
        "import", "misp", str(misp), "--submit", "--wait", "--rejects", str(rejects),
        "--errors", str(errors), *auth,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "associations A Record: 5" in result.stdout
    assert "Host->Address" not in result.stdout  # no longer dropped
    summary = next(line for line in result.stdout.splitlines() if " jobs, " in line)
    assert summary.endswith(" 0 rejected, 0 waiting"), summary
    assert "item errors: none" in result.stdout
    dropped = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert dropped and all(entry["reason"] and "record" in entry for entry in dropped)
    domain, ip = _misp_resolution(feeds_dir)
    shown = pipeline.cli("id", "domain", domain.upper().replace(".", "[.]"))
    assert shown.stdout.strip() == entity_id("domain", domain)
    found = pipeline.get(f"/api/ingest/v1/entity?type=domain&value={domain}")
    links = pipeline.get(f"/api/ingest/v1/entity/{found['id']}/associations")["items"]
    assert (entity_id("ip", ip), "A Record") in {
        (item["otherEntity"]["id"], item["associationName"]) for item in links
    }
    listed = pipeline.cli("jobs", "list", *auth)
    assert listed.returncode == 0 and listed.stdout.count(" done ") >= 2, listed.stdout


def test_every_sample_feed_imports_into_a_running_pipeline(
    pipeline: Pipeline, feeds_dir: Path, tmp_path: Path
) -> None:
    auth = ["--api-key", pipeline.key, "--api-secret", pipeline.secret]
    feeds = {
        "ip2asn": "ip2asn-v4.tsv",
        "feodo": "feodo.json",
        "ipblocklist": "ipblocklist.csv",
        "threatfox": "threatfox.json",
        "misp": "misp-moustachedbouncer.event.json",
        "cape": "0000a65749f5902c4d82ffa701198038f0b4870b00a27cfca109f8f933476d82.json.gz",
    }
    for feed, name in feeds.items():
        result = pipeline.cli(
            "import", feed, str(feeds_dir / name), "--submit", "--wait", "--json",
            "--errors", str(tmp_path / f"{feed}-errors.ndjson"), *auth,
        )  # fmt: skip
        assert result.returncode == 0, f"{feed}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
        outcome = json.loads(result.stdout)["outcome"]
        assert outcome["waiting"] == 0 and outcome["counts"].get("rejected", 0) == 0, outcome
