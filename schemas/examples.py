"""Examples of the HTTP bodies for ``/openapi.json`` (and the ``/docs`` page rendered from it):
a matrix association, a context association with provenance, and what a read returns.

Each constant maps an example's title to its value; the models list the values in their JSON
schema (``examples``) and the OpenAPI document names them on each request and answer.
"""

from __future__ import annotations

from pydantic import JsonValue

from schemas.ids import association_id, entity_id

_IP = entity_id("ip", "50.16.16.211")
_MALWARE = entity_id("malware-family", "QakBot")

ASSOCIATION_BODIES: dict[str, JsonValue] = {
    "A matrix association (ASN to Address)": {
        "entityID": entity_id("asn", "AS14618"),
        "relatedEntityID": _IP,
    },
    "A context association (a C2 of a malware family) with provenance": {
        "entityID": _IP,
        "relatedEntityID": _MALWARE,
        "associationType": "c2-of",
        "source": "feodo",
        "confidence": 75,
        "tlp": "clear",
        "firstSeen": "2025-12-30T13:56:31Z",
        "lastSeen": "2026-03-12T00:00:00Z",
    },
}

ENTITY_BODIES: dict[str, JsonValue] = {
    "An address with provenance and a nested context child": {
        "type": "ip",
        "attributes": {"ip": "50.16.16.211", "port": 443},
        "tags": ["QakBot"],
        "source": "feodo",
        "confidence": 75,
        "firstSeen": "2025-12-30T13:56:31Z",
        "lastSeen": "2026-03-12T00:00:00Z",
        "associations": [
            {
                "type": "malware-family",
                "attributes": {"malware-family": "qakbot"},
                "associationType": "c2-of",
            }
        ],
    }
}

ASSOCIATION_LISTS: dict[str, JsonValue] = {
    "A context association and where it came from": {
        "items": [
            {
                "id": association_id(_IP, _MALWARE),
                "entityID": _IP,
                "relatedEntityID": _MALWARE,
                "direction": "out",
                "otherEntity": {
                    "id": _MALWARE,
                    "type": "malware-family",
                    "summary": "qakbot",
                },
                "associationName": "c2-of",
                "associationNames": ["c2-of"],
                "fileAction": False,
                "createdAt": "2026-07-25T10:00:00Z",
                "lastSeen": "2026-07-25T10:00:00Z",
                "submissions": 1,
                "sources": [
                    {
                        "name": "feodo",
                        "kind": "source",
                        "confidence": 75,
                        "tlp": "clear",
                        "firstSeen": "2025-12-30T13:56:31Z",
                        "lastSeen": "2026-03-12T00:00:00Z",
                    },
                    {
                        "name": "importer",
                        "kind": "user",
                        "confidence": 75,
                        "tlp": "clear",
                        "firstSeen": "2025-12-30T13:56:31Z",
                        "lastSeen": "2026-03-12T00:00:00Z",
                    },
                ],
            }
        ],
        "nextCursor": None,
    }
}

BY_MODEL: dict[str, dict[str, JsonValue]] = {
    "AssociationBody": ASSOCIATION_BODIES,
    "EntityBody": ENTITY_BODIES,
    "AssociationListResponse": ASSOCIATION_LISTS,
}
"""The examples of each model by its name, for the OpenAPI document."""
