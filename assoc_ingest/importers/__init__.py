"""Feed importers: turn threat-intelligence feed files into ingest API bodies.

``import_feed(name, path)`` reads one file of a known feed and returns an ``ImportResult``:
entity bodies (for ``POST /api/ingest/v1/entities``), association bodies oriented primary ->
non-primary with an explicit default association type (for ``POST /api/ingest/v1/associations``),
and the count of everything dropped, by reason. Importers never resolve or contact an indicator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from assoc_ingest.importers.cape import import_cape
from assoc_ingest.importers.common import FeedBuilder, ImportResult
from assoc_ingest.importers.feodo import import_feodo, import_ipblocklist
from assoc_ingest.importers.ip2asn import SOURCE as IP2ASN_SOURCE
from assoc_ingest.importers.ip2asn import AsnTable, enrich, import_ip2asn
from assoc_ingest.importers.misp import import_misp
from assoc_ingest.importers.threatfox import import_threatfox

FEEDS: dict[str, Callable[[Path], ImportResult]] = {
    "threatfox": import_threatfox,
    "feodo": import_feodo,
    "ipblocklist": import_ipblocklist,
    "misp": import_misp,
    "cape": import_cape,
    "ip2asn": import_ip2asn,
}
"""Importer of every feed name ``import_feed`` knows; every body an importer makes names its feed
as ``source`` (``ipblocklist`` is Feodo Tracker's CSV: ``feodo``)."""


def import_feed(name: str, path: Path, *, asn_table: Path | None = None) -> ImportResult:
    """Import the file ``path`` of the feed ``name`` (a key of ``FEEDS``).

    With ``asn_table`` (an ip2asn TSV file), every address found in it is also linked to its
    CIDR ("CIDR to Address") and ASN ("ASN to Address", "ASN to CIDR"). Raises ``ValueError``
    for an unknown feed name and ``OSError``/``ValueError`` for an unreadable file.
    """
    try:
        importer = FEEDS[name]
    except KeyError:
        known = ", ".join(sorted(FEEDS))
        raise ValueError(f"unknown feed {name!r}; known feeds: {known}") from None
    try:
        result = importer(path)
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{path} does not look like a {name} file ({err!r})") from err
    if asn_table is not None:
        result = enrich_with_asn_table(result, AsnTable(asn_table))
    return result


def enrich_with_asn_table(result: ImportResult, table: AsnTable) -> ImportResult:
    """``result`` plus the CIDR and ASN of each of its addresses found in ``table``."""
    builder = FeedBuilder.from_result(result, source=IP2ASN_SOURCE)
    enrich(builder, table)
    return builder.result()


__all__ = ["FEEDS", "AsnTable", "ImportResult", "enrich_with_asn_table", "import_feed"]
