"""Compose runs MongoDB as a one-member replica set that it initiates itself, and points the
processes at that set, so that batches are written in transactions out of the box."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.deploy.files import compose, compose_services_of_our_image


def _mongo() -> dict[str, Any]:
    service: dict[str, Any] = compose()["services"]["mongo"]
    return service


def _replica_set_name() -> str:
    command = _mongo()["command"]
    assert "--replSet" in command, "mongod must run as a replica set member"
    return str(command[command.index("--replSet") + 1])


def test_mongod_runs_as_a_replica_set_that_its_health_check_initiates() -> None:
    name = _replica_set_name()
    check = " ".join(_mongo()["healthcheck"]["test"])

    assert f"rs.initiate({{_id: '{name}'" in check
    assert "host: 'mongo:27017'" in check
    assert "isWritablePrimary" in check  # healthy only once it can take writes


def test_every_process_connects_to_that_replica_set_once_it_is_healthy() -> None:
    name = _replica_set_name()
    for service_name, service in compose_services_of_our_image().items():
        url = urlparse(service["environment"]["MONGODB_URL"])
        assert url.hostname == "mongo", service_name
        assert parse_qs(url.query).get("replicaSet") == [name], service_name
        assert service["depends_on"]["mongo"]["condition"] == "service_healthy", service_name
        assert service["environment"].get("INGEST_MONGODB_ALLOW_STANDALONE") in {None, "false"}


def test_the_mongodb_image_is_a_supported_major_version() -> None:
    image = _mongo()["image"]
    assert image.startswith("mongo:")
    assert int(image.split(":", 1)[1].split(".")[0]) >= 7
