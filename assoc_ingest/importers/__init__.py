"""Feed importers: turn threat-intelligence feed files into ingest API bodies.

``import_feed(name, path)`` reads one file of a known feed and returns an ``ImportResult``:
entity bodies (for ``POST /api/ingest/v1/entities``), association bodies oriented primary ->
non-primary with an explicit default association type (for ``POST /api/ingest/v1/associations``),
and the count of everything dropped, by reason. Importers never resolve or contact an indicator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from assoc_ingest.importers import cape, feodo, ip2asn, misp, threatfox
from assoc_ingest.importers.common import FeedBuilder, ImportResult, WrongFile
from assoc_ingest.importers.ip2asn import SOURCE as IP2ASN_SOURCE
from assoc_ingest.importers.ip2asn import AsnTable, enrich
from schemas import AssociationRules

Importer = Callable[[Path, AssociationRules | None], ImportResult]

FEEDS: dict[str, Importer] = {
    "threatfox": threatfox.import_threatfox,
    "feodo": feodo.import_feodo,
    "ipblocklist": feodo.import_ipblocklist,
    "misp": misp.import_misp,
    "cape": cape.import_cape,
    "ip2asn": ip2asn.import_ip2asn,
}
"""Importer of every feed name ``import_feed`` knows; every body an importer makes names its feed
as ``source`` (``ipblocklist`` is Feodo Tracker's CSV: ``feodo``)."""

EXPECTED: dict[str, str] = {
    "threatfox": threatfox.EXPECTED,
    "feodo": feodo.EXPECTED,
    "ipblocklist": feodo.EXPECTED_CSV,
    "misp": misp.EXPECTED,
    "cape": cape.EXPECTED,
    "ip2asn": ip2asn.EXPECTED,
}
"""What a file of each feed looks like, as a wrong file's error says."""


def _looks_like(path: Path) -> str:
    """What the start of a file looks like, in a few words."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return "unreadable"
    if head[:2] == b"\x1f\x8b":
        return "gzip data"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"{":
        return "a JSON object"
    if text[:1] == b"[":
        return "a JSON array"
    first = next((line for line in text.splitlines() if not line.startswith(b"#")), b"")
    if b"\t" in first:
        return "tab-separated text"
    if b"," in first:
        return "comma-separated text"
    return "text"


def import_feed(
    name: str,
    path: Path,
    *,
    asn_table: Path | None = None,
    rules: AssociationRules | None = None,
) -> ImportResult:
    """Import the file ``path`` of the feed ``name`` (a key of ``FEEDS``), checking its links
    against ``rules`` (the default association types when None).

    With ``asn_table`` (an ip2asn TSV file), every address found in it is also linked to its
    CIDR ("CIDR to Address") and ASN ("ASN to Address", "ASN to CIDR"). Raises ``ValueError``
    for an unknown feed name, ``WrongFile`` for a file that is not of the feed (saying what was
    expected and what the file looks like) and ``OSError`` for an unreadable file.
    """
    try:
        importer = FEEDS[name]
    except KeyError:
        known = ", ".join(sorted(FEEDS))
        raise ValueError(f"unknown feed {name!r}; known feeds: {known}") from None
    try:
        result = importer(path, rules)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        why = str(err) if isinstance(err, WrongFile) else f"{type(err).__name__}: {err}"
        raise WrongFile(
            f"{path.name} is not a {name} file: expected {EXPECTED[name]}; it looks like "
            f"{_looks_like(path)} ({why[:200]})"
        ) from err
    if asn_table is not None:
        result = enrich_with_asn_table(result, AsnTable(asn_table), rules)
    return result


def enrich_with_asn_table(
    result: ImportResult, table: AsnTable, rules: AssociationRules | None = None
) -> ImportResult:
    """``result`` plus the CIDR and ASN of each of its addresses found in ``table``."""
    builder = FeedBuilder.from_result(result, rules, source=IP2ASN_SOURCE)
    enrich(builder, table)
    return builder.result()


__all__ = [
    "EXPECTED",
    "FEEDS",
    "AsnTable",
    "ImportResult",
    "WrongFile",
    "enrich_with_asn_table",
    "import_feed",
]
