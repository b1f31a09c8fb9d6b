"""The real feeds replayed under distinct values: a workload of the size end-to-end throughput
needs (one pass over ``shared/data/feeds`` is about 6,200 entities and 6,400 associations,
stored in a fraction of a second).

Replay 0 is the feeds as they are; replay ``r`` rewrites every entity's value the same way
wherever it appears, so each replay is new entities and new associations with the feeds' own
shape (types, association types, the links between them, their provenance):

- addresses and networks: the first octet moved to the ``r``-th next of the octets that are
  wholly public (so a network still holds its addresses, and nothing lands in a range the
  front refuses); the other octets kept;
- host names: a label ``r<r>`` in front; URLs: their host rewritten the same way;
- digests: a digest of the same length derived from ``r`` and the original;
- ASNs: ``r * 10,000,000`` added; e-mail addresses: ``+r<r>`` on the local part; every other
  value (names, mutexes, registry keys, user agents): ``-r<r>`` appended.

Every value is only a string: nothing is resolved or contacted.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from schemas import entity_id

Workload = tuple[list[dict[str, Any]], list[dict[str, Any]]]

# First octets with no address the front refuses (0, 10, 127, 224-255 are refused whole;
# 100, 169, 172 and 192 hold refused ranges).
_PUBLIC_FIRST_OCTETS = tuple(o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192))
_ASN_STEP = 10_000_000
_HOST_TYPES = ("domain", "hostname")
_DIGEST_TYPES = ("md5", "sha1", "sha256", "sha512", "file")


def _first_octet(octet: int, replay: int) -> int:
    if octet in _PUBLIC_FIRST_OCTETS:
        start = _PUBLIC_FIRST_OCTETS.index(octet)
    else:
        start = octet % len(_PUBLIC_FIRST_OCTETS)
    return _PUBLIC_FIRST_OCTETS[(start + replay) % len(_PUBLIC_FIRST_OCTETS)]


def _address(value: str, replay: int) -> str:
    address = ipaddress.ip_address(value)
    if address.version != 4:
        return str(ipaddress.ip_address(int(address) ^ (replay << 64)))
    first, rest = value.split(".", 1)
    return f"{_first_octet(int(first), replay)}.{rest}"


def _network(value: str, replay: int) -> str:
    address, _, prefix = value.partition("/")
    return f"{_address(address, replay)}/{prefix}"


def _host(value: str, replay: int) -> str:
    try:
        return _address(value, replay)
    except ValueError:
        return f"r{replay}.{value}"


def _url(value: str, replay: int) -> str:
    parts = urlsplit(value)
    host = parts.hostname or ""
    netloc = parts.netloc.replace(host, _host(host, replay), 1) if host else parts.netloc
    return urlunsplit(parts._replace(netloc=netloc))


def _digest(value: str, replay: int) -> str:
    return hashlib.sha512(f"{replay}:{value}".encode()).hexdigest()[: len(value)]


def _email(value: str, replay: int) -> str:
    local, at, domain = value.rpartition("@")
    return f"{local}+r{replay}{at}{domain}"


def _asn(value: str, replay: int) -> str:
    number = int("".join(c for c in value if c.isdigit())) + replay * _ASN_STEP
    if number > 4_294_967_295:
        raise ValueError(f"replay {replay} takes ASN {value} out of range")
    return str(number)


_REWRITES: dict[str, Callable[[str, int], str]] = {
    "ip": _address,
    "cidr": _network,
    "url": _url,
    "email-address": _email,
    "asn": _asn,
    **{name: _host for name in _HOST_TYPES},
    **{name: _digest for name in _DIGEST_TYPES},
}


def rewrite(type_name: str, value: str, replay: int) -> str:
    """``value`` of an entity of ``type_name`` as replay ``replay`` names it (0: unchanged)."""
    if replay == 0:
        return value
    rule = _REWRITES.get(type_name)
    return rule(value, replay) if rule else f"{value}-r{replay}"


def replay(workload: Workload, replays: int) -> Workload:
    """``workload`` (entities, associations that name them by ID) ``replays`` times, each under
    distinct values (see the module docstring)."""
    entities, associations = workload
    all_entities: list[dict[str, Any]] = []
    all_associations: list[dict[str, Any]] = []
    for number in range(replays):
        ids: dict[str, str] = {}
        for body in entities:
            type_name = body["type"]
            value = str(body["attributes"][type_name])
            new_value = rewrite(type_name, value, number)
            ids[entity_id(type_name, value)] = entity_id(type_name, new_value)
            all_entities.append(
                {**body, "attributes": {**body["attributes"], type_name: new_value}}
            )
        for link in associations:
            all_associations.append(
                {
                    **link,
                    "entityID": ids[link["entityID"]],
                    "relatedEntityID": ids[link["relatedEntityID"]],
                }
            )
    return all_entities, all_associations


def replays_for(workload: Workload, associations: int) -> int:
    """How many replays of ``workload`` make at least ``associations`` associations."""
    per_replay = max(len(workload[1]), 1)
    return -(-associations // per_replay)
