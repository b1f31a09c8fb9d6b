"""The replayed feeds workload: every replay is new, valid entities, and its associations link
the entities of the same replay as the feeds link theirs."""

from __future__ import annotations

from bench.e2e_bench import feeds_workload
from bench.feeds_replay import replay, replays_for, rewrite
from schemas import entity_id
from schemas.normalise import normalise


def test_replays_make_enough_valid_distinct_entities_and_associations() -> None:
    base = feeds_workload()
    count = replays_for(base, 3 * len(base[1]))
    entities, associations = replay(base, count)

    assert count == 3
    assert len(associations) == 3 * len(base[1])
    ids = set()
    for body in entities:
        value = str(body["attributes"][body["type"]])
        normalise(body["type"], value)  # the front would accept it
        ids.add(entity_id(body["type"], value))
    # Distinct apart from a few addresses that two replays map alike (first octets wrap).
    assert len(ids) >= 0.999 * len(entities)
    assert all(a["entityID"] in ids and a["relatedEntityID"] in ids for a in associations)
    pairs = {(a["entityID"], a["relatedEntityID"], a["associationType"]) for a in associations}
    assert len(pairs) == len(associations)


def test_a_network_keeps_its_addresses_and_a_url_its_host() -> None:
    import ipaddress

    network = rewrite("cidr", "34.104.0.0/14", 5)
    address = rewrite("ip", "34.105.1.2", 5)
    assert ipaddress.ip_address(address) in ipaddress.ip_network(network)
    assert rewrite("url", "https://sup.example.top:8443/x?y", 2) == (
        "https://r2.sup.example.top:8443/x?y"
    )
    assert rewrite("domain", "sup.example.top", 2) == "r2.sup.example.top"
    assert rewrite("ip", "34.105.1.2", 0) == "34.105.1.2"
