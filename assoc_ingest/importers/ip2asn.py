"""iptoasn.com ``ip2asn-v4.tsv``: IP ranges -> ASN, as ASN and CIDR entities linked "ASN to CIDR".

Rows are tab-separated ``range_start range_end as_number country_code as_description`` with no
header. Each inclusive range becomes the CIDRs that cover it exactly
(``ipaddress.summarize_address_range``). Rows of AS 0 ("Not routed") carry no ASN and are dropped.

``AsnTable`` looks addresses up in the same file, for enriching other feeds with
"CIDR to Address" and "ASN to Address".
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, summarize_address_range
from pathlib import Path

from assoc_ingest.importers.common import FeedBuilder, ImportResult, WrongFile
from schemas import AssociationRules

SOURCE = "ip2asn"


@dataclass(frozen=True)
class AsnRange:
    """One row of the table: an inclusive IPv4 range announced by an AS."""

    start: IPv4Address
    end: IPv4Address
    asn: int
    country: str
    description: str

    def networks(self) -> list[IPv4Network]:
        """The CIDRs that cover exactly this range."""
        return list(summarize_address_range(self.start, self.end))


def read_ranges(path: Path, builder: FeedBuilder | None = None) -> Iterator[AsnRange]:
    """The well-formed rows of ``path``; malformed ones are counted in ``builder.dropped``."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                start, end = IPv4Address(fields[0]), IPv4Address(fields[1])
                asn = int(fields[2])
                if end < start:
                    raise ValueError("range ends before it starts")
            except (IndexError, ValueError):
                if builder is not None:
                    builder.record = line.rstrip("\n")[:500]
                    builder.drop("malformed ip2asn row")
                continue
            country = fields[3] if len(fields) > 3 else ""
            description = fields[4] if len(fields) > 4 else ""
            yield AsnRange(start, end, asn, country, description)


def add_range(builder: FeedBuilder, row: AsnRange) -> tuple[str | None, list[str | None]]:
    """Add the ASN and CIDRs of ``row`` and their "ASN to CIDR" links; return their IDs."""
    if row.asn == 0:
        builder.drop("range not routed (AS 0)")
        return None, []
    asn_id = builder.entity(
        "asn", str(row.asn), {"as_name": row.description, "country": row.country}
    )
    cidr_ids: list[str | None] = []
    for network in row.networks():
        cidr_id = builder.entity(
            "cidr", str(network), {"as_number": row.asn, "country": row.country}
        )
        builder.associate(asn_id, cidr_id, "ASN to CIDR")
        cidr_ids.append(cidr_id)
    return asn_id, cidr_ids


EXPECTED = "an ip2asn TSV: range_start, range_end, AS number, country, description per line"


def import_ip2asn(path: Path, rules: AssociationRules | None = None) -> ImportResult:
    """ASN and CIDR entities of every routed range, linked "ASN to CIDR"."""
    builder = FeedBuilder(rules, source=SOURCE)
    rows = 0
    for row in read_ranges(path, builder):
        rows += 1
        builder.record = f"{row.start}\t{row.end}\t{row.asn}\t{row.country}\t{row.description}"
        add_range(builder, row)
    if rows == 0 and builder.dropped:
        raise WrongFile("no line is a well-formed ip2asn row")
    return builder.result()


class AsnTable:
    """Longest-prefix lookups of IPv4 addresses in an ip2asn table."""

    def __init__(self, path: Path) -> None:
        rows = sorted((row for row in read_ranges(path) if row.asn != 0), key=lambda r: r.start)
        self._rows = rows
        self._starts = [row.start for row in rows]

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, address: str) -> tuple[AsnRange, IPv4Network] | None:
        """The range holding ``address`` and its CIDR that contains it, or ``None``."""
        try:
            ip = ip_address(address)
        except ValueError:
            return None
        if not isinstance(ip, IPv4Address):
            return None
        position = bisect.bisect_right(self._starts, ip) - 1
        if position < 0 or ip > self._rows[position].end:
            return None
        row = self._rows[position]
        network = next(net for net in row.networks() if ip in net)
        return row, network


def enrich(builder: FeedBuilder, table: AsnTable) -> None:
    """Link every ``ip`` entity found in ``table`` to its CIDR and ASN.

    Adds the ASN and the CIDR entities, "CIDR to Address", "ASN to Address" and "ASN to CIDR".
    """
    for ip_id, ip_value in builder.values_of("ip"):
        found = table.lookup(ip_value)
        if found is None:
            continue
        row, network = found
        asn_id = builder.entity(
            "asn", str(row.asn), {"as_name": row.description, "country": row.country}
        )
        cidr_id = builder.entity(
            "cidr", str(network), {"as_number": row.asn, "country": row.country}
        )
        builder.associate(cidr_id, ip_id, "CIDR to Address")
        builder.associate(asn_id, ip_id, "ASN to Address")
        builder.associate(asn_id, cidr_id, "ASN to CIDR")
