"""What STIX 2.1 words mean in our vocabulary: tables only, no code per type.

- ``SDO_TYPES``: STIX domain objects that are entities of the catalogue, by the property that
  names them (``malware`` with ``is_family`` true is a ``malware-family``);
- ``HASH_TYPES``: STIX hash algorithm names -> our hash entity types, in the order a file with
  several hashes picks its main one (the others become attributes);
- ``ENTITY_PROPERTIES``: per observable type, the property paths (as a STIX pattern writes them)
  that hold an entity's main value, and the attributes other paths fill;
- ``EMBEDDED_REFS``: the reference properties of observables that are links, with the name
  the link gets;
- ``PREFERRED_TYPES``: which association type a STIX relationship name picks where the matrix
  offers several for a pair of kinds (File -> File is "File Archive" or "File Drop");
- ``TLP_MARKINGS``: the predefined TLP marking definitions (1.0 and 2.0) and their level;
- ``MISP_EVENT_ATTRIBUTE_TYPES`` (the MISP event importer) and ``MISP_ATTRIBUTE_TYPES`` (the
  same plus file names): MISP attribute types of events and of ``x-misp-object`` custom objects.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

STIX_NAMESPACE: Final = "00abedb4-aa42-466c-9c01-fed23315a9b7"
"""The UUIDv5 namespace of STIX 2.1 deterministic observable IDs (STIX 2.1 §2.9)."""

OUR_NAMESPACE: Final = "7c3d0f5e-8f0b-5b6a-9a8e-6d2f3f1c2b10"
"""The UUIDv5 namespace of the IDs our exports give domain objects and relationships."""

ENTITY_TYPE_PROPERTY: Final = "x_assoc_ingest_type"
"""Custom property naming our entity type when the STIX type alone does not say it (a
``hostname`` exported as a ``domain-name``); an import honours it."""

ATTRIBUTES_PROPERTY: Final = "x_assoc_ingest_attributes"
"""Custom property carrying an exported entity's attributes beyond its main value."""

SOURCES_PROPERTY: Final = "x_assoc_ingest_sources"
"""Custom property of an exported domain object listing every source that reported it
(``name``, ``confidence``, ``tlp``, ``first_seen``, ``last_seen``): STIX gives a domain object
one creator, and tools and vulnerabilities no first/last seen; an import reads it back."""

GENERIC_OBJECT_TYPE: Final = "x-assoc-ingest-entity"
"""Custom object an entity of a type STIX has no object for is exported as."""

SDO_TYPES: Final = MappingProxyType(
    {
        "malware": "malware",
        "threat-actor": "adversary",
        "intrusion-set": "group",
        "campaign": "campaign",
        "vulnerability": "cve",
        "tool": "tool",
    }
)
"""STIX domain object type -> entity type (their ``name`` is the main value)."""

MALWARE_FAMILY_TYPE: Final = "malware-family"
"""The entity type of a ``malware`` object whose ``is_family`` is true."""

HASH_TYPES: Final = MappingProxyType(
    {
        "SHA-256": "sha256",
        "SHA-512": "sha512",
        "SHA3-256": "sha3-256",
        "SHA3-512": "sha3-512",
        "SHA-1": "sha1",
        "MD5": "md5",
        "SHA-224": "sha224",
        "SHA-384": "sha384",
        "SHA3-224": "sha3-224",
        "SHA3-384": "sha3-384",
    }
)
"""STIX hash names -> hash entity types, most preferred first (a file's main entity)."""

HASH_NAMES: Final = MappingProxyType(
    {
        **{name.upper().replace("-", ""): type_name for name, type_name in HASH_TYPES.items()},
        "SHA256": "sha256",
        "SHA1": "sha1",
    }
)
"""Hash names as publishers spell them (``SHA256``, ``sha-256``), upper-cased without hyphens,
-> hash entity types."""

STIX_HASH_NAME: Final = MappingProxyType(
    {type_name: name for name, type_name in HASH_TYPES.items()}
)
"""Hash entity type -> the STIX hash name an export writes."""

SIMPLE_OBSERVABLES: Final = MappingProxyType(
    {
        "ipv4-addr": ("value", "ip"),
        "ipv6-addr": ("value", "ip"),
        "domain-name": ("value", "domain"),
        "url": ("value", "url"),
        "email-addr": ("value", "email-address"),
        "autonomous-system": ("number", "asn"),
        "mutex": ("name", "mutex"),
        "windows-registry-key": ("key", "regkey"),
        "mac-addr": ("value", "mac-address"),
        "directory": ("path", "path"),
        "user-account": ("account_login", "username"),
    }
)
"""Observable type -> (property holding the main value, entity type). An address value in
CIDR notation (``198.51.100.0/24``) is a ``cidr`` entity."""

OBSERVABLE_ATTRIBUTES: Final = MappingProxyType(
    {
        "email-addr": {"display_name": "display_name"},
        "autonomous-system": {"name": "name", "rir": "rir"},
        "file": {"name": "filename", "size": "size", "mime_type": "mime_type"},
        "user-account": {"account_type": "account_type", "display_name": "display_name"},
    }
)
"""Observable properties kept as attributes of the entity: property -> attribute name."""

USER_AGENT_PATH: Final = ("extensions", "http-request-ext", "request_header", "User-Agent")
"""Where a ``network-traffic`` object holds a user agent."""

EMBEDDED_REFS: Final = MappingProxyType(
    {
        "domain-name": (("resolves_to_refs", "resolves-to"),),
        "ipv4-addr": (("resolves_to_refs", "resolves-to"), ("belongs_to_refs", "belongs-to")),
        "ipv6-addr": (("resolves_to_refs", "resolves-to"), ("belongs_to_refs", "belongs-to")),
        "email-addr": (("belongs_to_ref", "belongs-to"),),
        "file": (("contains_refs", "contains"), ("parent_directory_ref", "located-in")),
        "email-message": (
            ("from_ref", "sent-from"),
            ("sender_ref", "sent-by"),
            ("to_refs", "sent-to"),
            ("cc_refs", "sent-to"),
            ("bcc_refs", "sent-to"),
        ),
        "network-traffic": (("dst_ref", "connected-to"),),
    }
)
"""Observable type -> (reference property, link name) pairs: the object (the source of the
link) -> each referenced object. ``file`` also reads ``extensions.archive-ext.contains_refs``;
``network-traffic`` links its ``src_ref`` to its ``dst_ref`` and to its user agent."""

PREFERRED_TYPES: Final = MappingProxyType(
    {
        "contains": ("File Archive", "URL Host"),
        "drops": ("File Drop",),
        "dropped": ("File Drop",),
        "dropped-by": ("File Drop",),
        "downloads": ("File Download",),
        "downloaded-from": ("File Download",),
        "communicates-with": ("File Traffic",),
        "connected-to": ("File Traffic",),
        "connects-to": ("File Traffic",),
        "beacons-to": ("File Traffic",),
        "exfiltrates-to": ("File Traffic",),
        "resolves-to": ("DNS PTR Record", "File DNS Query"),
        "resolved-to": ("DNS PTR Record", "File DNS Query"),
        "queries": ("File DNS Query",),
    }
)
"""Relationship name -> association types it prefers, in order, where several fit a pair."""

TLP_LEVELS: Final = ("clear", "green", "amber", "amber+strict", "red")
"""TLP levels from the least to the most restrictive (``white`` reads as ``clear``)."""

TLP_MARKINGS: Final = MappingProxyType(
    {
        # TLP 1.0, predefined by STIX 2.1 (§7.2.1.4)
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
        # TLP 2.0 (OASIS extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d)
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
    }
)
"""Predefined TLP marking definition IDs -> TLP level."""

TLP2_EXTENSION: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
"""The OASIS TLP 2.0 extension an export's marking definitions use."""

TLP2_MARKING_IDS: Final = MappingProxyType(
    {level: mid for mid, level in list(TLP_MARKINGS.items())[4:]}
)
"""TLP level -> the TLP 2.0 marking definition ID an export references."""

MISP_EVENT_ATTRIBUTE_TYPES: Final = MappingProxyType(
    {
        "email": "email-address",
        "email-src": "email-address",
        "email-dst": "email-address",
        "domain": "domain",
        "hostname": "hostname",
        "ip-src": "ip",
        "ip-dst": "ip",
        "url": "url",
        "link": "link",
        "md5": "md5",
        "sha1": "sha1",
        "sha256": "sha256",
        "sha512": "sha512",
        "mutex": "mutex",
        "regkey": "regkey",
        "user-agent": "user-agent",
        "AS": "asn",
    }
)
"""MISP attribute types -> entity types, as the MISP event importer reads an event's attributes
(a file name there is a property of its file object, not an entity of its own)."""

MISP_ATTRIBUTE_TYPES: Final = MappingProxyType(
    {**MISP_EVENT_ATTRIBUTE_TYPES, "filename": "filename"}
)
"""MISP attribute type -> entity type, for the attributes of ``x-misp-object`` objects (the
same table as the MISP feed importer's)."""

MISP_SIGNATURE_TYPE: Final = "threat"
"""The entity type of an ``av-signature`` MISP object's ``signature`` (a detection name)."""


def slug(type_name: str) -> str:
    """The relationship name of an association type: lower case, words joined by hyphens
    (``File DNS Query`` -> ``file-dns-query``); an import maps it back to the type."""
    return "-".join(type_name.lower().split())
