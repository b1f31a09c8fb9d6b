"""Every variable compose and Kubernetes set is one the settings read, with a valid value."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.files import (
    compose_services_of_our_image,
    k8s_containers,
    k8s_object,
    settings_env_names,
)
from workers.ground.settings import Settings
from workers.queue.base import Topology

OWN_VARIABLES = ("INGEST_", "AMQP_URL", "MONGODB_URL")


def k8s_environment() -> dict[str, str]:
    """The environment a pod gets: the ConfigMap and the Secret (envFrom) plus ``env``."""
    env = dict(k8s_object("ConfigMap", "assoc-ingest-config")["data"])
    env.update(k8s_object("Secret", "assoc-ingest-secrets")["stringData"])
    for container in k8s_containers():
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef")
            assert ref["name"] in {"assoc-ingest-config", "assoc-ingest-secrets"}
        env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


def compose_environments() -> dict[str, dict[str, str]]:
    return {
        name: {key: str(value) for key, value in service.get("environment", {}).items()}
        for name, service in compose_services_of_our_image().items()
    }


def environments() -> list[Any]:
    cases = [
        pytest.param(env, id=f"compose-{name}") for name, env in compose_environments().items()
    ]
    return [*cases, pytest.param(k8s_environment(), id="k8s")]


def test_the_settings_reader_knows_the_conventional_and_prefixed_names() -> None:
    names = settings_env_names()
    assert {"AMQP_URL", "MONGODB_URL", "INGEST_PORT", "INGEST_JWT_SECRET"} <= names
    assert "INGEST_AMQP_URL" in names  # the prefixed alias is accepted too
    assert "PORT" not in names


@pytest.mark.parametrize("env", environments())
def test_every_variable_set_is_read_by_the_settings(env: dict[str, str]) -> None:
    ours = {name for name in env if name.startswith(OWN_VARIABLES)}
    assert ours, "no INGEST_* variable found: the test reads the wrong place"
    assert ours - settings_env_names() == set()


@pytest.mark.parametrize("env", environments())
def test_the_values_set_are_valid_settings_of_the_default_topology(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.amqp_url and settings.amqp_url.startswith("amqp://")
    assert settings.mongodb_url is not None
    assert Topology.from_settings(settings) == Topology()


def test_the_secret_holds_the_credentials_and_the_configmap_none() -> None:
    secret = k8s_object("Secret", "assoc-ingest-secrets")["stringData"]
    configmap = k8s_object("ConfigMap", "assoc-ingest-config")["data"]
    assert set(secret) == {"AMQP_URL", "MONGODB_URL", "INGEST_JWT_SECRET"}
    assert not set(secret) & set(configmap)
