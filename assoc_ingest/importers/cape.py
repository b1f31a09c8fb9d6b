"""CAPE sandbox reports (JSON, optionally gzip-compressed): the File Actions of the target file.

The target file is a ``sha256`` entity (md5, sha1, name, type and detections as attributes).
From it:

- "File Mutex" to every ``behavior.summary.mutexes``;
- "File Registry Key" to every ``behavior.summary.write_keys``;
- "File Drop" to every ``dropped[]`` file and ``CAPE.payloads[]`` payload (by sha256);
- "File DNS Query" to every ``network.dns[].request`` and ``network.domains[].domain``;
- "File Traffic" to the IPs of ``network.hosts`` and ``network.dead_hosts``, the
  ``InternetConnectA`` server names, and the URLs of the ``http_request`` signature (reported
  without a scheme; ``http://`` is assumed), each URL also linked "URL Host" to its host;
- "File User Agent" to every ``InternetOpenA`` ``Agent`` and ``ObtainUserAgentString`` value.

The sandbox's own private addresses fail normalisation and are counted as dropped, as are the
``network.domains`` name -> address resolutions unless the matrix in force has a type for
Host -> Address (the defaults have none).

The family the sandbox detected (``detections``) is a ``malware-family`` entity, the target
file ``sample-of`` it. Every body carries the analysis as provenance: source ``cape``, the
report's TLP when it has one, and the analysis start and end as first and last seen.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from assoc_ingest.importers.common import FeedBuilder, ImportResult, WrongFile, host_type
from assoc_ingest.importers.provenance import Seen, feed_time
from schemas import AssociationRules

SOURCE = "cape"

_USER_AGENT_ARGUMENTS = {("InternetOpenA", "Agent"), ("InternetOpenW", "Agent")}
_USER_AGENT_ARGUMENTS |= {("ObtainUserAgentString", "UserAgent")}
_SERVER_ARGUMENTS = {("InternetConnectA", "ServerName"), ("InternetConnectW", "ServerName")}


def _load(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    report = orjson.loads(data)
    if not isinstance(report, dict) or not ({"target", "behavior"} & report.keys()):
        raise WrongFile("it has no target nor behavior")
    return report


def _call_arguments(report: dict[str, Any], wanted: set[tuple[str, str]]) -> Iterator[str]:
    for process in report.get("behavior", {}).get("processes", []):
        for call in process.get("calls", []):
            api = call.get("api")
            for argument in call.get("arguments", []):
                if (api, argument.get("name")) in wanted and argument.get("value"):
                    yield str(argument["value"])


def _file_attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "md5": record.get("md5"),
        "sha1": record.get("sha1"),
        "filename": record.get("name"),
        "file_type": record.get("type"),
        "size": record.get("size"),
    }


def _add_files(builder: FeedBuilder, target_id: str | None, report: dict[str, Any]) -> None:
    dropped = report.get("dropped") or []
    payloads = (report.get("CAPE") or {}).get("payloads") or []
    for record in [*dropped, *payloads]:
        if not record.get("sha256"):
            builder.drop("CAPE file without a sha256")
            continue
        attributes = _file_attributes(record)
        if record.get("cape_type"):
            attributes["cape_type"] = record["cape_type"]
        child = builder.entity("sha256", record["sha256"], attributes)
        builder.associate(target_id, child, "File Drop")


def _add_network(builder: FeedBuilder, target_id: str | None, report: dict[str, Any]) -> None:
    network = report.get("network") or {}
    names = [str(query.get("request", "")) for query in network.get("dns", [])]
    names += [str(domain.get("domain", "")) for domain in network.get("domains", [])]
    for name in names:
        builder.associate(target_id, builder.entity("domain", name), "File DNS Query")
    for domain in network.get("domains", []):
        if domain.get("ip"):  # Host -> Address (A record): only a custom type carries it
            builder.record = {"section": "network.domains", "item": domain}
            host = builder.id_of("domain", domain.get("domain"))
            builder.link(host, builder.entity("ip", domain["ip"]))
    addresses = [str(host.get("ip", "")) for host in network.get("hosts", [])]
    addresses += [str(pair[0]) for pair in network.get("dead_hosts", []) if pair]
    for address in addresses:
        builder.associate(target_id, builder.entity("ip", address), "File Traffic")
    for server in _call_arguments(report, _SERVER_ARGUMENTS):
        builder.associate(target_id, builder.entity(host_type(server), server), "File Traffic")
    for signature in report.get("signatures", []):
        if signature.get("name") != "http_request":
            continue
        for item in signature.get("data", []):
            url = str(item.get("url", "")) if isinstance(item, dict) else ""
            if url and "://" not in url:
                url = "http://" + url
            builder.associate(target_id, builder.url(url), "File Traffic")


def _analysis(report: dict[str, Any]) -> Seen:
    info = report.get("info") or {}
    tlp = info.get("tlp")
    marking = str(tlp).strip().lower().removeprefix("tlp:") if tlp else None
    marking = "clear" if marking == "white" else marking
    return Seen(
        None,
        marking if marking in ("clear", "green", "amber", "amber+strict", "red") else None,
        feed_time(info.get("started")),
        feed_time(info.get("ended")),
    )


def _families(report: dict[str, Any]) -> list[str]:
    detections = report.get("detections")
    if isinstance(detections, str):
        return [name.strip() for name in detections.split(",") if name.strip()]
    if isinstance(detections, list):  # newer CAPE: [{"family": ..., "details": [...]}]
        return [str(d.get("family")) for d in detections if isinstance(d, dict) and d.get("family")]
    return []


EXPECTED = "a CAPE sandbox report: a JSON object (gzip or not) with target.file and behavior"


def import_cape(path: Path, rules: AssociationRules | None = None) -> ImportResult:
    """The target file of a CAPE report, its File Actions and its detected family."""
    report = _load(path)
    builder = FeedBuilder(rules, source=SOURCE, seen=_analysis(report))
    builder.record = {"section": "target.file"}
    target = (report.get("target") or {}).get("file") or {}
    families = _families(report)
    attributes = _file_attributes(target)
    attributes["detection"] = ", ".join(families) or None
    target_id = builder.entity("sha256", target.get("sha256"), attributes, families)
    if target_id is None:
        return builder.result()
    for family in families:
        builder.associate(target_id, builder.entity("malware-family", family), "sample-of")
    summary = (report.get("behavior") or {}).get("summary") or {}
    builder.record = {"section": "behavior.summary"}
    for mutex in summary.get("mutexes", []):
        builder.associate(target_id, builder.entity("mutex", mutex), "File Mutex")
    for key in summary.get("write_keys", []):
        builder.associate(target_id, builder.entity("regkey", key), "File Registry Key")
    builder.record = {"section": "behavior.processes (calls)"}
    for agent in _call_arguments(report, _USER_AGENT_ARGUMENTS):
        builder.associate(target_id, builder.entity("user-agent", agent), "File User Agent")
    builder.record = {"section": "dropped, CAPE.payloads"}
    _add_files(builder, target_id, report)
    builder.record = {"section": "network, signatures"}
    _add_network(builder, target_id, report)
    return builder.result()
