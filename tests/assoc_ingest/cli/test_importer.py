"""``assoc-ingest import FEED FILE``: counts, NDJSON output, and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assoc_ingest.cli import app
from schemas import entity_id
from schemas.http import AssociationBody, EntityBody


@pytest.fixture
def feodo(feeds_dir: Path) -> Path:
    path = feeds_dir / "feodo.json"
    assert path.is_file(), f"the feed samples are missing: expected {path}"
    return path


def test_import_out_writes_entities_and_associations_as_ndjson(feodo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["import", "feodo", str(feodo), "--out", str(out)])
    assert result.exit_code == 0, result.output
    entities = [json.loads(line) for line in (out / "entities.ndjson").read_text().splitlines()]
    associations = [
        json.loads(line) for line in (out / "associations.ndjson").read_text().splitlines()
    ]
    assert len(entities) == 13 and len(associations) == 13
    for body in entities:
        EntityBody.model_validate(body)
    for body in associations:
        AssociationBody.model_validate(body)
    assert {
        "entityID": entity_id("asn", "14618"),
        "relatedEntityID": entity_id("ip", "50.16.16.211"),
        "associationType": "ASN to Address",
        "source": "feodo",
        "confidence": 75,
        "firstSeen": "2025-12-30T13:56:31Z",
        "lastSeen": "2026-03-12T00:00:00Z",
    } in associations
    assert "feodo: 13 entities, 13 associations, 0 dropped" in result.output
    assert f"wrote {out / 'entities.ndjson'}" in result.output


def test_import_prints_dropped_counts_by_reason(tmp_path: Path) -> None:
    feed = tmp_path / "feodo.json"
    feed.write_text(
        json.dumps(
            [
                {"ip_address": "10.0.0.1", "hostname": "box.example.com", "as_number": 64496},
                {"ip_address": "203.0.113.5", "hostname": None, "as_number": 64496},
            ]
        )
    )
    result = CliRunner().invoke(app, ["import", "feodo", str(feed)])
    assert result.exit_code == 0, result.output
    assert "feodo: 3 entities, 1 associations, 1 dropped" in result.output
    assert "dropped 1: invalid ip: a private address (RFC 1918)" in result.output


def test_import_json_prints_counts_by_type(feodo: Path) -> None:
    result = CliRunner().invoke(app, ["import", "feodo", str(feodo), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["entitiesByType"] == {"ip": 5, "hostname": 3, "asn": 3, "malware-family": 2}
    assert counts["associationsByType"] == {"ASN to Address": 5, "DNS PTR Record": 3, "c2-of": 5}
    assert counts["dropped"] == {}


def test_an_unknown_feed_is_a_usage_error(feodo: Path) -> None:
    result = CliRunner().invoke(app, ["import", "nosuchfeed", str(feodo)])
    assert result.exit_code == 2
    assert "unknown feed" in result.output


def test_out_and_submit_together_are_a_usage_error(feodo: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["import", "feodo", str(feodo), "--out", str(tmp_path), "--submit"]
    )
    assert result.exit_code == 2


def test_a_file_that_is_not_json_is_reported(tmp_path: Path) -> None:
    feed = tmp_path / "broken.json"
    feed.write_text("{not json")
    result = CliRunner().invoke(app, ["import", "threatfox", str(feed)])
    assert result.exit_code == 1
    assert "broken.json is not a threatfox file: expected ThreatFox's JSON export" in result.output


def test_a_file_of_another_feed_is_reported(tmp_path: Path) -> None:
    feed = tmp_path / "threatfox.json"
    feed.write_text(json.dumps({"1": [{"ioc_value": "203.0.113.5:80", "ioc_type": "ip:port"}]}))
    result = CliRunner().invoke(app, ["import", "feodo", str(feed)])
    assert result.exit_code == 1
    assert "is not a feodo file: expected Feodo Tracker's JSON blocklist" in result.output
