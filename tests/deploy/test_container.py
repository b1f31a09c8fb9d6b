"""The image runs as an unprivileged user, and every command compose and Kubernetes run is a
command (with options) the ``assoc-ingest`` CLI has."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer

from assoc_ingest.cli import app
from tests.deploy.files import DEPLOY, compose_services_of_our_image, k8s_object, k8s_objects

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def cli_command(path: list[str]) -> Any:
    """The command at ``path`` (e.g. ``["keys", "create"]``), None when not registered.

    (Typer builds click-style commands; groups have ``commands``, commands ``params``.)
    """
    command: Any = typer.main.get_command(app)
    for name in path:
        commands = getattr(command, "commands", {})
        if name not in commands:
            return None
        command = commands[name]
    return command


def run_commands() -> list[Any]:
    """Every argument list the deployment passes to ``assoc-ingest``."""
    cases = [pytest.param(json.loads(dict(final_stage())["CMD"]), id="Dockerfile-CMD")]
    for name, service in compose_services_of_our_image().items():
        cases.append(pytest.param(service["command"], id=f"compose-{name}"))
    for obj in k8s_objects():
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                cases.append(pytest.param(container["args"], id=f"k8s-{obj['metadata']['name']}"))
    return cases


def test_the_image_is_multi_stage_on_python_3_11_slim() -> None:
    stages = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    assert any("pip install ." in args for keyword, args in dockerfile_instructions())
    assert any(k == "COPY" and a.startswith("--from=") for k, a in final_stage())


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_kubernetes_pods_refuse_to_run_as_root() -> None:
    for name in ("assoc-ingest-api", "assoc-ingest-worker"):
        pod = k8s_object("Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0


def test_the_image_copies_every_package_the_project_installs() -> None:
    include = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = {name.rstrip("*") for name in include["packages"]["find"]["include"]}
    copied = {args.split()[0] for keyword, args in dockerfile_instructions() if keyword == "COPY"}
    assert packages <= copied


def test_the_entrypoint_is_the_installed_cli() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["scripts"]
    entrypoint = json.loads(dict(final_stage())["ENTRYPOINT"])
    assert entrypoint == ["assoc-ingest"]
    assert scripts["assoc-ingest"] == "assoc_ingest.cli:app"


def test_the_healthcheck_asks_the_liveness_endpoint() -> None:
    assert "/healthz" in dict(final_stage())["HEALTHCHECK"]


@pytest.mark.parametrize("args", run_commands())
def test_every_deployed_command_exists_in_the_cli(args: list[str]) -> None:
    name, options = args[0], [arg for arg in args[1:] if arg.startswith("--")]
    command = cli_command([name])
    assert command is not None, (
        f"`assoc-ingest {name}` is used by deploy/ but not registered on assoc_ingest.cli.app "
        "(api and worker come from assoc_ingest/cli/serve.py)"
    )
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert set(options) <= known, f"`assoc-ingest {name}` has no option(s) {set(options) - known}"


def test_the_front_listens_on_all_interfaces_in_containers() -> None:
    assert compose_services_of_our_image()["api"]["command"][:3] == ["api", "--host", "0.0.0.0"]
    (container,) = k8s_object("Deployment", "assoc-ingest-api")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["args"][:3] == ["api", "--host", "0.0.0.0"]


def test_the_front_is_probed_on_its_health_endpoints() -> None:
    (container,) = k8s_object("Deployment", "assoc-ingest-api")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = k8s_object("Service", "assoc-ingest-api")
    assert (
        service["spec"]["selector"]
        == k8s_object("Deployment", "assoc-ingest-api")["spec"]["selector"]["matchLabels"]
    )


def test_the_worker_announces_its_metrics_port() -> None:
    deployment = k8s_object("Deployment", "assoc-ingest-worker")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    configmap = k8s_object("ConfigMap", "assoc-ingest-config")["data"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == configmap["INGEST_METRICS_PORT"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in container["ports"]} == {
        int(configmap["INGEST_METRICS_PORT"])
    }


def test_the_worker_grace_period_outlasts_its_shutdown_timeout() -> None:
    pod = k8s_object("Deployment", "assoc-ingest-worker")["spec"]["template"]["spec"]
    configmap = k8s_object("ConfigMap", "assoc-ingest-config")["data"]
    assert pod["terminationGracePeriodSeconds"] > float(configmap["INGEST_SHUTDOWN_TIMEOUT"])


def test_both_deployments_have_a_disruption_budget_and_an_autoscaler() -> None:
    for name in ("assoc-ingest-api", "assoc-ingest-worker"):
        labels = k8s_object("Deployment", name)["spec"]["selector"]["matchLabels"]
        assert k8s_object("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"] == labels
    hpa = k8s_object("HorizontalPodAutoscaler", "assoc-ingest-api")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "assoc-ingest-api"
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_compose_runs_two_workers() -> None:
    assert compose_services_of_our_image()["worker"]["deploy"]["replicas"] == 2


def test_the_kustomization_lists_every_manifest() -> None:
    from tests.deploy.files import K8S, load_yaml

    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
