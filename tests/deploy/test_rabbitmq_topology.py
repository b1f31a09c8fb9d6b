"""``deploy/rabbitmq/definitions.json`` and the KEDA trigger name exactly the topology the code
declares, so a broker seeded from the file accepts the code's declarations unchanged."""

from __future__ import annotations

from typing import Any

from tests.deploy.files import DEPLOY, compose, k8s_object, load_json
from workers.ground.settings import Settings
from workers.queue.base import Topology
from workers.queue.rabbit.topology import (
    dead_queue_arguments,
    retry_queue_arguments,
    work_queue_arguments,
)

TOPOLOGY = Topology()


def definitions() -> dict[str, Any]:
    document: dict[str, Any] = load_json(DEPLOY / "rabbitmq/definitions.json")
    return document


def test_queues_and_their_arguments_are_those_the_code_declares() -> None:
    queues = {queue["name"]: queue for queue in definitions()["queues"]}
    expected = {
        TOPOLOGY.work_queue: work_queue_arguments(TOPOLOGY),
        TOPOLOGY.dead_queue: dead_queue_arguments(TOPOLOGY),
        **{
            TOPOLOGY.retry_queue(tier): retry_queue_arguments(TOPOLOGY, tier)
            for tier in TOPOLOGY.retry_tiers
        },
    }
    assert {name: queue["arguments"] for name, queue in queues.items()} == expected
    assert all(queue["durable"] and not queue["auto_delete"] for queue in queues.values())


def test_the_work_queue_is_a_bounded_quorum_queue_that_refuses_publishes_when_full() -> None:
    (work,) = [q for q in definitions()["queues"] if q["name"] == "ingest.jobs"]
    assert work["arguments"]["x-queue-type"] == "quorum"
    assert work["arguments"]["x-max-length"] == 1_000_000
    assert work["arguments"]["x-overflow"] == "reject-publish"
    assert work["arguments"]["x-dead-letter-exchange"] == "ingest.dlx"


def test_each_retry_tier_waits_its_delay_then_returns_to_the_work_exchange() -> None:
    retries = {q["name"]: q["arguments"] for q in definitions()["queues"] if ".retry." in q["name"]}
    assert sorted(retries) == sorted(
        f"ingest.retry.{int(t * 1000)}ms" for t in TOPOLOGY.retry_tiers
    )
    for tier in TOPOLOGY.retry_tiers:
        arguments = retries[f"ingest.retry.{int(tier * 1000)}ms"]
        assert arguments["x-message-ttl"] == int(tier * 1000)
        assert arguments["x-dead-letter-exchange"] == "ingest"
        assert arguments["x-dead-letter-routing-key"] == "jobs"


def test_exchanges_and_bindings_route_jobs_and_dead_letters() -> None:
    exchanges = {e["name"]: e for e in definitions()["exchanges"]}
    assert {name: e["type"] for name, e in exchanges.items()} == {
        TOPOLOGY.exchange: "direct",
        TOPOLOGY.dead_exchange: "fanout",
    }
    assert all(e["durable"] and not e["auto_delete"] for e in exchanges.values())
    bindings = {
        (b["source"], b["destination"], b["destination_type"], b["routing_key"])
        for b in definitions()["bindings"]
    }
    assert bindings == {
        (TOPOLOGY.exchange, TOPOLOGY.work_queue, "queue", TOPOLOGY.work_routing_key),
        (TOPOLOGY.dead_exchange, TOPOLOGY.dead_queue, "queue", ""),
    }


def test_everything_lives_in_a_declared_vhost_the_defined_user_may_use() -> None:
    document = definitions()
    vhosts = {vhost["name"] for vhost in document["vhosts"]}
    objects = document["queues"] + document["exchanges"] + document["bindings"]
    assert {obj["vhost"] for obj in objects} <= vhosts
    # Importing definitions at boot skips the default user: the file must bring its own.
    users = {user["name"] for user in document["users"]}
    granted = {(p["user"], p["vhost"]) for p in document["permissions"] if p["write"] == ".*"}
    assert {(user, vhost) for user in users for vhost in vhosts} <= granted


def test_compose_loads_the_definitions_the_file_describes() -> None:
    service = compose()["services"]["rabbitmq"]
    assert service["image"].startswith("rabbitmq:3.13-management")
    mounts = {v.split(":")[0]: v.split(":")[1] for v in service["volumes"]}
    assert mounts["./rabbitmq/definitions.json"] == "/etc/rabbitmq/definitions.json"
    conf = (DEPLOY / "rabbitmq/rabbitmq.conf").read_text(encoding="utf-8")
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    assert mounts["./rabbitmq/rabbitmq.conf"].startswith("/etc/rabbitmq/conf.d/")
    user = definitions()["users"][0]["name"]
    for service_name in ("api", "worker"):
        url = compose()["services"][service_name]["environment"]["AMQP_URL"]
        assert url.startswith(f"amqp://{user}:")


def test_keda_scales_workers_on_the_length_of_the_work_queue() -> None:
    scaled = k8s_object("ScaledObject", "assoc-ingest-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "assoc-ingest-worker"
    k8s_object("Deployment", "assoc-ingest-worker")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["queueName"] == TOPOLOGY.work_queue
    assert int(trigger["metadata"]["value"]) > 0
    auth = k8s_object("TriggerAuthentication", trigger["authenticationRef"]["name"])
    (host,) = auth["spec"]["secretTargetRef"]
    assert (host["parameter"], host["name"], host["key"]) == (
        "host",
        "assoc-ingest-secrets",
        "AMQP_URL",
    )


def test_the_shipped_broker_takes_the_largest_message_the_front_publishes() -> None:
    conf = (DEPLOY / "rabbitmq/rabbitmq.conf").read_text(encoding="utf-8")
    sizes = [
        int(line.split("=", 1)[1])
        for line in conf.splitlines()
        if line.split("=", 1)[0].strip() == "max_message_size"
    ]
    assert sizes, "rabbitmq.conf must set max_message_size (RabbitMQ 4.x: 16 MiB by default)"
    assert sizes[-1] >= Settings.model_fields["publish_max_bytes"].default
