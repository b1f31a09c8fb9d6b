"""The chaos scenario's workload: entities and unique association pairs, in submission order.

Entities come in blocks of ``BLOCK`` addresses (IPv6 documentation range, never contacted) and
``BLOCK`` host names under ``.example``; each block yields every ``Address -> Host`` pair of its
own entities (``DNS PTR Record``), so every pair is unique and the expected store content is
known exactly. Requests are planned in the order a feed would send them: each entity chunk
goes just before the first association chunk that needs it, except every other entity chunk,
which goes just after it, so that some associations arrive before their entities.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from schemas import association_id, entity_id

__all__ = ["ASSOCIATION_TYPE", "BLOCK", "Pair", "Step", "Workload", "build_workload"]

BLOCK = 10
"""Addresses and hosts per block; a block holds ``BLOCK * BLOCK`` pairs."""
ASSOCIATION_TYPE = "DNS PTR Record"
_BASE = int(ipaddress.IPv6Address("2001:db8:c4a0::"))

Kind = Literal["entities", "associations"]


@dataclass(frozen=True, slots=True)
class Pair:
    """One association: its ID (the store's key) and both ends."""

    id: str
    entity_id: str
    related_id: str

    def body(self) -> dict[str, Any]:
        return {
            "entityID": self.entity_id,
            "relatedEntityID": self.related_id,
            "associationType": ASSOCIATION_TYPE,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """One planned bulk request: entity IDs (``entities``) or association IDs."""

    kind: Kind
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Workload:
    entities: dict[str, dict[str, Any]]
    """Entity body by entity ID."""
    pairs: dict[str, Pair]
    """Pair by association ID."""
    steps: tuple[Step, ...]

    def body(self, step: Step, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        """The JSON bodies of ``keys`` (a subset of ``step.keys``)."""
        if step.kind == "entities":
            return [self.entities[key] for key in keys]
        return [self.pairs[key].body() for key in keys]

    def ends(self, pair_id: str) -> tuple[str, str]:
        pair = self.pairs[pair_id]
        return pair.entity_id, pair.related_id


def _entity(type_name: str, value: str) -> tuple[str, dict[str, Any]]:
    return entity_id(type_name, value), {"type": type_name, "attributes": {type_name: value}}


def build_workload(associations: int, batch: int = 200) -> Workload:
    """``associations`` unique pairs and their entities, planned as bulk requests of ``batch``
    items (``batch`` must be a multiple of ``BLOCK * BLOCK``)."""
    per_block = BLOCK * BLOCK
    if associations < 1 or batch % per_block:
        raise ValueError(f"need associations >= 1 and a batch that is a multiple of {per_block}")
    blocks = -(-associations // per_block)
    entities: dict[str, dict[str, Any]] = {}
    pairs: dict[str, Pair] = {}
    block_entities: list[list[str]] = []
    for block in range(blocks):
        ips = [
            _entity("ip", str(ipaddress.IPv6Address(_BASE + block * BLOCK + i + 1)))
            for i in range(BLOCK)
        ]
        hosts = [_entity("domain", f"h{block * BLOCK + i}.chaos.example") for i in range(BLOCK)]
        entities.update(ips)
        entities.update(hosts)
        block_entities.append([eid for eid, _ in ips] + [eid for eid, _ in hosts])
        for ip_id, _ in ips:
            for host_id, _ in hosts:
                if len(pairs) < associations:
                    aid = association_id(ip_id, host_id)
                    pairs[aid] = Pair(aid, ip_id, host_id)
    return Workload(entities, pairs, _plan(list(pairs), block_entities, batch))


def _plan(pair_ids: list[str], block_entities: list[list[str]], batch: int) -> tuple[Step, ...]:
    per_block = BLOCK * BLOCK
    blocks_per_entity_chunk = max(1, batch // (2 * BLOCK))
    steps: list[Step] = []
    emitted: set[int] = set()
    for start in range(0, len(pair_ids), batch):
        chunk = Step("associations", tuple(pair_ids[start : start + batch]))
        first_block = start // per_block
        last_block = (start + len(chunk.keys) - 1) // per_block
        needed = sorted(
            {b // blocks_per_entity_chunk for b in range(first_block, last_block + 1)} - emitted
        )
        early = [c for c in needed if c % 2 == 0]
        late = [c for c in needed if c % 2 == 1]
        steps.extend(_entity_step(c, block_entities, blocks_per_entity_chunk) for c in early)
        steps.append(chunk)
        steps.extend(_entity_step(c, block_entities, blocks_per_entity_chunk) for c in late)
        emitted.update(needed)
    return tuple(steps)


def _entity_step(chunk: int, block_entities: list[list[str]], blocks: int) -> Step:
    keys = [eid for group in block_entities[chunk * blocks : (chunk + 1) * blocks] for eid in group]
    return Step("entities", tuple(keys))
