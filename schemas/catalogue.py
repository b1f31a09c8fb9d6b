"""The entity type catalogue: one table of type name -> data type -> matrix kind.

Every entity type is a row of ``_TABLE``; nothing here is code per type. The data type decides
how a main attribute is normalised (``schemas.normalise``); the kind decides which association
types can join two entities (``schemas.rules``). A type without a kind can be stored but never
associated through the matrix.

The types are ThreatWinds' entity definitions, plus ``mutex`` and ``user-agent`` (ThreatConnect
indicator kinds with no ThreatWinds type).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Kind(StrEnum):
    """A ThreatConnect indicator kind: what the association matrix is written in."""

    ADDRESS = "Address"
    HOST = "Host"
    URL = "URL"
    FILE = "File"
    EMAIL_ADDRESS = "EmailAddress"
    ASN = "ASN"
    CIDR = "CIDR"
    MUTEX = "Mutex"
    REGISTRY_KEY = "RegistryKey"
    USER_AGENT = "UserAgent"


class DataType(StrEnum):
    """How a main attribute is normalised (see ``schemas.normalise``)."""

    IP = "ip"
    FQDN = "fqdn"
    URL = "url"
    EMAIL = "email"
    HASH = "hash"
    FILE = "file"
    ASN = "asn"
    CIDR = "cidr"
    ISTR = "istr"
    STR = "str"
    INT = "int"
    PORT = "port"
    MAC = "mac"
    UUID = "uuid"
    DATE = "date"
    HEX = "hex"


class NormalisationError(ValueError):
    """A main attribute that cannot be normalised; ``reason`` says why in a sentence fragment."""

    code = "invalid_entity"

    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(f"invalid {type_name}: {reason}")
        self.type_name = type_name
        self.reason = reason


class UnknownEntityType(NormalisationError):
    """The type is not in the catalogue."""

    code = "unknown_entity_type"

    def __init__(self, type_name: str) -> None:
        hint = unknown_type_hint(type_name)
        super().__init__(type_name, f"unknown entity type{hint}")
        self.args = (f"unknown entity type {type_name!r}{hint}",)


@dataclass(frozen=True, slots=True)
class EntityType:
    """One catalogue row. ``hex_length`` is the exact digit count of a ``hash`` type."""

    name: str
    data_type: DataType
    kind: Kind | None
    description: str = ""
    hex_length: int | None = None


_D = DataType
_K = Kind

# Exact hex digits of each hash type (the ``hash`` data type).
_HEX_LENGTHS: dict[str, int] = {
    "md5": 32,
    "sha1": 40,
    "sha224": 56,
    "sha256": 64,
    "sha384": 96,
    "sha512": 128,
    "sha3-224": 56,
    "sha3-256": 64,
    "sha3-384": 96,
    "sha3-512": 128,
    "sha512-224": 56,
    "sha512-256": 64,
    "ja3-fingerprint": 32,
    "payload": 64,
}

# name, data type, kind, description
_TABLE: tuple[tuple[str, DataType, Kind | None, str], ...] = (
    # Matrix kinds (SPEC §2)
    ("ip", _D.IP, _K.ADDRESS, "An IPv4 or IPv6 address"),
    ("domain", _D.FQDN, _K.HOST, "A registered domain name"),
    ("hostname", _D.FQDN, _K.HOST, "The fully qualified name of one host"),
    ("url", _D.URL, _K.URL, "An absolute URL of a resource"),
    ("file", _D.FILE, _K.FILE, "A file, identified by its MD5 or SHA3-256 digest or a UUID"),
    ("md5", _D.HASH, _K.FILE, "An MD5 file digest"),
    ("sha1", _D.HASH, _K.FILE, "A SHA-1 file digest"),
    ("sha224", _D.HASH, _K.FILE, "A SHA-224 file digest"),
    ("sha256", _D.HASH, _K.FILE, "A SHA-256 file digest"),
    ("sha384", _D.HASH, _K.FILE, "A SHA-384 file digest"),
    ("sha512", _D.HASH, _K.FILE, "A SHA-512 file digest"),
    ("sha3-224", _D.HASH, _K.FILE, "A SHA3-224 file digest"),
    ("sha3-256", _D.HASH, _K.FILE, "A SHA3-256 file digest"),
    ("sha3-384", _D.HASH, _K.FILE, "A SHA3-384 file digest"),
    ("sha3-512", _D.HASH, _K.FILE, "A SHA3-512 file digest"),
    ("sha512-224", _D.HASH, _K.FILE, "A SHA-512/224 file digest"),
    ("sha512-256", _D.HASH, _K.FILE, "A SHA-512/256 file digest"),
    ("email-address", _D.EMAIL, _K.EMAIL_ADDRESS, "An email address"),
    ("asn", _D.ASN, _K.ASN, "An autonomous system number"),
    ("cidr", _D.CIDR, _K.CIDR, "A public network in CIDR notation"),
    ("mutex", _D.STR, _K.MUTEX, "A mutex name created by malware"),
    ("regkey", _D.ISTR, _K.REGISTRY_KEY, "A Windows registry key"),
    ("user-agent", _D.STR, _K.USER_AGENT, "An HTTP User-Agent header value"),
    # Other ThreatWinds types: stored and searchable, not associated through the matrix.
    ("aba-rtn", _D.INT, None, "An ABA routing transit number"),
    ("adversary", _D.ISTR, None, "A threat actor"),
    ("airport-name", _D.ISTR, None, "An airport name"),
    ("aso", _D.ISTR, None, "An autonomous system organisation"),
    ("authentihash", _D.HEX, None, "An Authenticode signature hash of an executable"),
    ("bank-account-nr", _D.INT, None, "A bank account number"),
    ("base64", _D.STR, None, "A value in Base64"),
    ("bic", _D.ISTR, None, "A bank identifier code (SWIFT)"),
    ("bin", _D.INT, None, "A bank identification number"),
    ("breach", _D.UUID, None, "A data breach"),
    ("breach-count", _D.INT, None, "How many records a breach leaked"),
    ("breach-date", _D.DATE, None, "When a breach happened"),
    ("breach-description", _D.STR, None, "What a breach was"),
    ("btc", _D.STR, None, "A Bitcoin address"),
    ("campaign", _D.ISTR, None, "A campaign: a set of attacks over time (STIX campaign)"),
    ("category", _D.ISTR, None, "A classification label"),
    ("cc-number", _D.INT, None, "A payment card number"),
    ("cdhash", _D.HEX, None, "An Apple code directory hash"),
    ("certificate-fingerprint", _D.HEX, None, "A TLS certificate fingerprint"),
    ("chrome-extension-id", _D.STR, None, "A Chrome extension ID"),
    ("city", _D.ISTR, None, "A city name"),
    ("command", _D.STR, None, "A command line"),
    ("cookie", _D.STR, None, "An HTTP cookie"),
    ("country", _D.ISTR, None, "A country name"),
    ("cpe", _D.ISTR, None, "A CPE platform identifier"),
    ("cve", _D.ISTR, None, "A CVE vulnerability identifier"),
    ("dash", _D.STR, None, "A Dash address"),
    ("date", _D.DATE, None, "A calendar date (YYYY-MM-DD)"),
    ("date-of-issue", _D.DATE, None, "When a document was issued"),
    ("datetime", _D.STR, None, "A timestamp"),
    ("dkim", _D.STR, None, "A DKIM public key"),
    ("dkim-signature", _D.STR, None, "A DKIM signature"),
    ("email", _D.STR, None, "An email Message-ID"),
    ("email-body", _D.ISTR, None, "An email body"),
    ("email-display-name", _D.ISTR, None, "An email sender display name"),
    ("email-header", _D.STR, None, "An email header"),
    ("email-mime-boundary", _D.STR, None, "A MIME boundary of an email"),
    ("email-subject", _D.ISTR, None, "An email subject"),
    ("email-thread-index", _D.STR, None, "An email Thread-Index (Base64)"),
    ("email-x-mailer", _D.ISTR, None, "An email X-Mailer header"),
    ("eppn", _D.EMAIL, None, "An eduPerson principal name"),
    ("expiration-date", _D.DATE, None, "When a document expires"),
    ("facebook-profile", _D.URL, None, "A Facebook profile URL"),
    ("ffn", _D.STR, None, "A frequent flyer number"),
    ("file-data", _D.URL, None, "A URL to download a file or attachment from"),
    ("filename", _D.ISTR, None, "A file or attachment name"),
    ("filename-pattern", _D.STR, None, "A regular expression matching file names"),
    ("flight", _D.STR, None, "A flight number"),
    ("github-organization", _D.URL, None, "A GitHub organisation URL"),
    ("github-repository", _D.URL, None, "A GitHub repository URL"),
    ("github-user", _D.URL, None, "A GitHub profile URL"),
    ("group", _D.ISTR, None, "A group of adversaries"),
    ("hex", _D.HEX, None, "A value in hexadecimal"),
    ("iban", _D.ISTR, None, "An international bank account number"),
    ("id-number", _D.STR, None, "An identity document number"),
    ("issuer", _D.ISTR, None, "An issuer name"),
    ("issuing-country", _D.ISTR, None, "The country that issued a document"),
    ("ja3-fingerprint", _D.HASH, None, "A JA3 TLS client fingerprint (MD5)"),
    ("jabber-id", _D.EMAIL, None, "A Jabber/XMPP address"),
    ("jarm-fingerprint", _D.HEX, None, "A JARM TLS server fingerprint"),
    ("last-analysis", _D.STR, None, "When something was last analysed"),
    ("latitude", _D.STR, None, "A GPS latitude"),
    ("link", _D.URL, None, "A reference URL"),
    ("longitude", _D.STR, None, "A GPS longitude"),
    ("mac-address", _D.MAC, None, "A network interface hardware address"),
    ("malware", _D.ISTR, None, "A malware name"),
    ("malware-family", _D.ISTR, None, "A malware family"),
    ("malware-sample", _D.URL, None, "A URL of a malware sample"),
    ("malware-type", _D.ISTR, None, "A malware type"),
    ("mime-type", _D.ISTR, None, "A media type"),
    ("mobile-app-id", _D.STR, None, "A mobile application ID"),
    ("os", _D.ISTR, None, "An operating system"),
    ("passport", _D.STR, None, "A passport number"),
    ("password", _D.STR, None, "A password"),
    ("path", _D.STR, None, "A file system or HTTP request path"),
    ("pattern-in-file", _D.STR, None, "A pattern found in a file"),
    ("pattern-in-memory", _D.STR, None, "A pattern found in memory"),
    ("pattern-in-traffic", _D.STR, None, "A pattern found in network traffic"),
    ("payload", _D.HASH, None, "A SHA3-256 digest of a network payload"),
    ("pgp-private-key", _D.STR, None, "A PGP private key"),
    ("pgp-public-key", _D.STR, None, "A PGP public key"),
    ("phone", _D.STR, None, "A phone number"),
    ("pnr", _D.STR, None, "A passenger name record locator"),
    ("port", _D.PORT, None, "A TCP or UDP port number"),
    ("postal-address", _D.ISTR, None, "A postal address"),
    ("process", _D.ISTR, None, "A process name"),
    ("process-state", _D.ISTR, None, "The state of a process"),
    ("profile-photo", _D.URL, None, "A profile photo URL"),
    ("prtn", _D.ISTR, None, "A premium-rate phone number"),
    ("redress-number", _D.STR, None, "A DHS redress control number"),
    ("size-in-bytes", _D.STR, None, "A size in bytes"),
    ("ssh-banner", _D.STR, None, "An SSH server banner"),
    ("ssh-fingerprint", _D.STR, None, "An SSH key fingerprint"),
    ("ssr", _D.STR, None, "An airline special service request"),
    ("text", _D.ISTR, None, "A case-insensitive text"),
    ("threat", _D.ISTR, None, "A threat name"),
    ("tiktok-profile", _D.URL, None, "A TikTok profile URL"),
    ("tool", _D.ISTR, None, "Legitimate software that attackers use (STIX tool)"),
    ("twitter-profile", _D.URL, None, "A Twitter/X profile URL"),
    ("username", _D.ISTR, None, "A user name"),
    ("value", _D.STR, None, "A case-sensitive text"),
    ("visa", _D.STR, None, "A visa number"),
    ("whois-registrant", _D.ISTR, None, "Who registered a domain"),
    ("whois-registrar", _D.ISTR, None, "The registrar of a domain"),
    ("windows-scheduled-task", _D.ISTR, None, "A Windows scheduled task"),
    ("windows-service-displayname", _D.ISTR, None, "A Windows service display name"),
    ("windows-service-name", _D.ISTR, None, "A Windows service name"),
    ("xmr", _D.STR, None, "A Monero address"),
    ("zip-code", _D.STR, None, "A postal code"),
)

CATALOGUE: Mapping[str, EntityType] = MappingProxyType(
    {
        name: EntityType(name, data_type, kind, description, _HEX_LENGTHS.get(name))
        for name, data_type, kind, description in _TABLE
    }
)
"""Every known entity type by name (read-only)."""


def unknown_type_hint(type_name: str) -> str:
    """What to say after "unknown entity type": for a kind's name (``Address``, ``Host``) the
    entity types of that kind, else the nearest known type names, else where they are listed.
    """
    text = str(type_name).strip()
    for kind in Kind:
        if kind.value.casefold() == text.casefold():
            types = ", ".join(row.name for row in CATALOGUE.values() if row.kind is kind)
            return f": {kind.value} is a kind; its entity types are {types}"
    near = difflib.get_close_matches(text.lower()[:64], CATALOGUE, n=3, cutoff=0.6)
    if near:
        return f"; did you mean {' or '.join(near)}?"
    near = difflib.get_close_matches(text.lower()[:64], CATALOGUE, n=3, cutoff=0.0)
    return f"; the nearest known types are {', '.join(near)} (GET /definitions lists them all)"


def entity_type(type_name: str) -> EntityType:
    """The catalogue row of ``type_name``; raises ``UnknownEntityType`` when there is none."""
    found = CATALOGUE.get(type_name)
    if found is None:
        raise UnknownEntityType(type_name)
    return found


def main_attribute(type_name: str) -> str:
    """The attribute holding an entity's main value: the type name itself.

    Raises ``UnknownEntityType`` for a type that is not in the catalogue.
    """
    return entity_type(type_name).name
