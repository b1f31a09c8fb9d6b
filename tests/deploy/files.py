"""Reading the files under ``deploy/`` and the names the code defines, for the deploy tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AliasChoices

import workers.ground.metrics
from workers.ground.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def k8s_objects() -> list[dict[str, Any]]:
    """Every object of every manifest under ``deploy/k8s`` (the kustomization excepted)."""
    objects: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            objects += load_yaml_documents(path)
    return objects


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name} under deploy/k8s, found {len(found)}"
    return found[0]


def k8s_containers() -> Iterator[dict[str, Any]]:
    for obj in k8s_objects():
        if obj["kind"] == "Deployment":
            yield from obj["spec"]["template"]["spec"]["containers"]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(DEPLOY / "compose.yaml")
    return document


def compose_services_of_our_image() -> dict[str, dict[str, Any]]:
    """The compose services that run the assoc-ingest image (built from deploy/Dockerfile)."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if "build" in service or str(service.get("image", "")).startswith("assoc-ingest")
    }


# settings -------------------------------------------------------------------------------
def settings_env_names() -> set[str]:
    """Every environment variable ``Settings`` reads (upper case)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add((prefix + field_name).upper())
    return names


# metrics --------------------------------------------------------------------------------
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def defined_series() -> dict[str, frozenset[str]]:
    """Series name -> label names, for every metric defined in ``workers.ground.metrics``."""
    series: dict[str, frozenset[str]] = {}
    for value in vars(workers.ground.metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        (family,) = value.describe()
        labels = frozenset(value._labelnames)  # the label names have no public accessor
        for suffix in SERIES_SUFFIXES[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            series[family.name + suffix] = labels | extra
    return series


PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def promql_series(expr: str) -> dict[str, set[str]]:
    """The series an expression selects -> the label names it matches on them.

    Function names (followed by ``(``), keywords, label matchers, ``by (...)`` clauses, range
    durations and Grafana variables are not series.
    """
    labels: dict[str, set[str]] = {}
    for name, matchers in _SELECTOR.findall(_STRING.sub('""', expr)):
        labels.setdefault(name, set()).update(_MATCHER.findall(matchers))
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for name in _IDENTIFIER.findall(text):
        if name.lower() not in PROMQL_WORDS:
            labels.setdefault(name, set())
    return labels
