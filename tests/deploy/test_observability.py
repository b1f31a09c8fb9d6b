"""The dashboard and the alert rules query metrics the code defines, with labels they carry,
and Prometheus, Grafana and compose agree on names and paths."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.files import (
    DEPLOY,
    compose,
    defined_series,
    k8s_object,
    load_json,
    load_yaml,
    promql_series,
)

# Series that come from outside the code: Prometheus itself and the RabbitMQ exporter.
EXTERNAL_SERIES = {"up"}
EXTERNAL_PREFIXES = ("rabbitmq_",)
TARGET_LABELS = {"job", "instance"}


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = load_json(DEPLOY / "grafana/dashboards/assoc-ingest.json")
    return document


def dashboard_expressions() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(DEPLOY / "prometheus/rules.yaml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def unknown_series_and_labels(expr: str) -> list[str]:
    defined = defined_series()
    problems = []
    for name, labels in promql_series(expr).items():
        if name in EXTERNAL_SERIES or name.startswith(EXTERNAL_PREFIXES):
            continue
        if name not in defined:
            problems.append(f"{name} is not defined in workers.ground.metrics")
            continue
        unknown = labels - defined[name] - TARGET_LABELS
        if unknown:
            problems.append(f"{name} has no label(s) {sorted(unknown)}")
    return problems


def test_the_promql_reader_finds_series_and_ignores_functions() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (route, le) "
        '(rate(ingest_http_request_seconds_bucket{route="/x"}[5m]))) > 1e-3 and up == 0'
    )
    assert promql_series(expr) == {"ingest_http_request_seconds_bucket": {"route"}, "up": set()}
    assert unknown_series_and_labels("rate(ingest_no_such_thing_total[5m])") == [
        "ingest_no_such_thing_total is not defined in workers.ground.metrics"
    ]
    assert unknown_series_and_labels('ingest_http_requests_total{colour="red"}') == [
        "ingest_http_requests_total has no label(s) ['colour']"
    ]


@pytest.mark.parametrize(("title", "expr"), dashboard_expressions())
def test_every_dashboard_query_uses_defined_metrics(title: str, expr: str) -> None:
    assert unknown_series_and_labels(expr) == [], f"panel {title!r}: {expr}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_every_alert_rule_uses_defined_metrics(rule: dict[str, Any]) -> None:
    assert unknown_series_and_labels(rule["expr"]) == []
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]


def test_the_dashboard_shows_every_required_view() -> None:
    queried = {name for _, expr in dashboard_expressions() for name in promql_series(expr)}
    required = {
        "ingest_items_acknowledged_total",
        "ingest_http_requests_total",
        "ingest_http_request_seconds_bucket",
        "ingest_items_per_message_count",
        "ingest_worker_items_total",
        "ingest_end_to_end_seconds_bucket",
        "ingest_queue_depth_messages",
        "ingest_worker_dead_letters_total",
        "ingest_worker_item_retries_total",
        "ingest_store_write_seconds_bucket",
    }
    assert required - queried == set()


def test_dashboard_panels_have_unique_ids_and_use_the_provisioned_datasource() -> None:
    datasources = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
    uids = {source["uid"] for source in datasources["datasources"]}
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] in uids, panel["title"]


def test_alerts_cover_queue_growth_dead_letters_backpressure_and_workers_down() -> None:
    exprs = " ".join(rule["expr"] for rule in alert_rules())
    for needle in (
        "ingest_queue_depth_messages",
        "ingest_worker_dead_letters_total",
        "ingest_backpressure_responses_total",
        'up{job="assoc-ingest-worker"} == 0',
    ):
        assert needle in exprs


def test_alerted_scrape_jobs_exist_in_the_prometheus_configuration() -> None:
    config = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    alerted = {job for rule in alert_rules() for job in re.findall(r'job="([^"]+)"', rule["expr"])}
    assert "assoc-ingest-worker" in alerted
    assert alerted - jobs == set()


def test_compose_mounts_the_files_prometheus_and_grafana_read() -> None:
    services = compose()["services"]
    config = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    prometheus_mounts = {
        v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]
    }
    for rule_file in config["rule_files"]:
        assert prometheus_mounts[rule_file] == "./prometheus/rules.yaml"
    assert prometheus_mounts["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus.yml"
    providers = load_yaml(DEPLOY / "grafana/provisioning/dashboards/assoc-ingest.yaml")
    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    for provider in providers["providers"]:
        assert grafana_mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert grafana_mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


def test_prometheus_scrapes_the_ports_the_processes_serve_metrics_on() -> None:
    config = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    ports = {
        scrape["job_name"]: scrape["dns_sd_configs"][0]["port"]
        for scrape in config["scrape_configs"]
        if "dns_sd_configs" in scrape
    }
    configmap = k8s_object("ConfigMap", "assoc-ingest-config")["data"]
    assert ports["assoc-ingest-api"] == int(configmap["INGEST_PORT"])
    assert ports["assoc-ingest-worker"] == int(configmap["INGEST_METRICS_PORT"])
