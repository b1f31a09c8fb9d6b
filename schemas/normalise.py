"""Normalisation of main attributes, one function per data type (SPEC §1).

``normalise(type_name, value)`` returns the canonical text an entity ID is computed from, or
raises ``NormalisationError`` with a readable reason. Every normaliser is idempotent:
normalising its own output returns it unchanged.

Values of the ip, fqdn, url and email data types are refanged first (``refang``): feeds and
reports write ``hxxp://evil[.]example[dot]com`` so that nobody clicks it. ``fold_tags`` keeps
each tag once, compared case-insensitively.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import date
from email.utils import getaddresses
from urllib.parse import urlsplit

import idna

from schemas.catalogue import DataType, EntityType, NormalisationError, entity_type

MAX_TEXT_BYTES = 64 * 1024
"""Largest ``istr``/``str`` value, in UTF-8 bytes."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Reject(Exception):
    """Raised inside a normaliser; ``normalise`` turns it into ``NormalisationError``."""


MAX_EMAIL_INPUT = 1024
"""Longest email-address value accepted, display name and comments included."""

MAX_INT_DIGITS = 64
"""Longest whole number accepted for the int data type (account and card numbers fit)."""


def _ranges(*pairs: tuple[str, str]) -> tuple[tuple[int, int, int, str], ...]:
    nets = ((ipaddress.ip_network(net), reason) for net, reason in pairs)
    return tuple(
        (net.version, int(net.network_address), int(net.broadcast_address), reason)
        for net, reason in nets
    )


# Explicit lists: ``ipaddress.is_private`` also covers documentation ranges, which we accept.
# Kept as integer ranges (version, first, last, reason): this check runs for every ip entity.
_REJECTED_RANGES = _ranges(
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a shared carrier-grade NAT address (RFC 6598)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved or broadcast address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0/96", "an IPv4-mapped address (give the IPv4 form)"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local (private) address"),
    ("ff00::/8", "a multicast address"),
)

_CONTROL_TO_SPACE = {code: " " for code in (*range(0x20), *range(0x7F, 0xA0))}
_HAS_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEX = re.compile(r"[0-9a-f]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ASN = re.compile(r"(?:ASN?)?\s*([0-9]{1,10})", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
_MAC = re.compile(r"[0-9a-f]{12}")


# Defanging marks as feeds and reports write them (SPEC §1), matched in any case. A URL is
# refanged in its scheme and authority only: its path, query and fragment are kept as given.
_DEFANGED = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\[:\]|\[@\]|\[at\]", re.IGNORECASE)
_REFANGED = {"[.]": ".", "(.)": ".", "{.}": ".", "[dot]": ".", "[:]": ":", "[@]": "@", "[at]": "@"}
_DEFANGED_SCHEME = re.compile(r"^(\s*)hxxp(s?)(?=:|\[:\])", re.IGNORECASE)
_MAYBE_DEFANGED = re.compile(r"[\[({]|hxxp", re.IGNORECASE)
_AUTHORITY = re.compile(r"^([^/?#]*?(?::|\[:\])//)([^/?#]*)(.*)$", re.DOTALL)


def _refang_marks(text: str) -> str:
    return _DEFANGED.sub(lambda m: _REFANGED[m.group(0).lower()], text)


def refang(value: str, *, url: bool = False) -> str:
    """``value`` with the defanging marks undone: ``hxxp``/``hxxps`` schemes, ``[.]``, ``(.)``,
    ``{.}``, ``[dot]`` -> ``.``, ``[:]`` -> ``:``, ``[@]``, ``[at]`` -> ``@`` (any case).

    With ``url``, only the scheme and the authority (user, host, port) are refanged. A result
    that is still defanged (a mark inside a mark, such as ``[[.].]``) is refused, so that a
    refanged value always refangs to itself and normalisation stays idempotent.
    """
    if not _MAYBE_DEFANGED.search(value):
        return value  # the common case: nothing to undo
    text = _DEFANGED_SCHEME.sub(lambda m: f"{m.group(1)}http{m.group(2)}", value)
    if url:
        parts = _AUTHORITY.match(text)
        if parts is None:
            return text
        head, authority, rest = parts.groups()
        refanged = _refang_marks(head) + _refang_marks(authority)
        if _DEFANGED.search(refanged):
            raise _Reject("is defanged twice (a mark inside a mark)")
        return refanged + rest
    refanged = _refang_marks(text)
    if _DEFANGED.search(refanged):
        raise _Reject("is defanged twice (a mark inside a mark)")
    return refanged


def fold_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Each tag once, compared case-insensitively (``BianLian`` and ``Bianlian`` are one tag):
    the first spelling met is kept, in first-seen order. Surrounding spaces are trimmed and
    empty tags dropped."""
    kept: dict[str, str] = {}
    for tag in tags:
        clean = tag.strip()
        if clean:
            kept.setdefault(clean.lower(), clean)
    return tuple(kept.values())


def _reject_range(version: int, first: int, last: int) -> None:
    for rejected_version, low, high, reason in _REJECTED_RANGES:
        if version == rejected_version and first <= high and low <= last:
            raise _Reject(reason if first == last else f"overlaps {reason}")


def _ip(value: str) -> str:
    try:
        address: IPAddress = ipaddress.ip_address(value.strip())
    except ValueError:
        raise _Reject("not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            raise _Reject("a scoped IPv6 address is not public")
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    number = int(address)
    _reject_range(address.version, number, number)
    return str(address)


def _cidr(value: str) -> str:
    try:
        network: IPNetwork = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise _Reject("not a network in CIDR notation") from None
    if "%" in value:
        raise _Reject("a scoped IPv6 network is not public")
    _reject_range(network.version, int(network.network_address), int(network.broadcast_address))
    return str(network)


def _check_labels(name: str) -> str:
    if len(name) > 253:
        raise _Reject("longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise _Reject("a host name needs a top-level domain")
    for label in labels:
        if not label:
            raise _Reject("has an empty label")
        if len(label) > 63:
            raise _Reject("has a label longer than 63 characters")
        if not _LABEL.fullmatch(label):
            raise _Reject(f"label {label!r} is not letters, digits and inner hyphens")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError:
                raise _Reject(f"label {label!r} is not valid punycode") from None
    if not _TLD.fullmatch(labels[-1]):
        raise _Reject("the top-level domain must be 2 to 63 letters")
    return name


def _fqdn(value: str) -> str:
    name = value.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise _Reject("empty host name")
    if name.isascii():
        # Not through idna for ASCII: it rejects real host names such as "r3---sn-x.example".
        return _check_labels(name.lower())
    try:
        encoded = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise _Reject(f"not a valid internationalised host name ({exc})") from None
    return _check_labels(encoded.removesuffix(".").lower())


def _url(value: str) -> str:
    text = value.strip()
    if _HAS_CONTROL.search(text):
        raise _Reject("contains control characters")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  # raises ValueError on a bad port
    except ValueError as exc:
        raise _Reject(f"not a valid URL ({exc})") from None
    if not parts.scheme:
        raise _Reject("not an absolute URL (scheme://host/...)")
    if not parts.netloc or not parts.hostname or not text[len(parts.scheme) :].startswith("://"):
        raise _Reject("has no host")
    start = len(parts.scheme) + 3
    end = start + len(parts.netloc)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if any(c.isspace() for c in hostport):
        raise _Reject("the host contains white space")
    return f"{parts.scheme.lower()}://{userinfo}{at}{hostport.lower()}{text[end:]}"


def _email(value: str) -> str:
    text = value.strip()
    if _HAS_CONTROL.search(text):
        raise _Reject("contains control characters")
    # RFC 5321 caps an address at 254 characters; the display name and comments around it
    # get room, but not unbounded (getaddresses recurses once per nested comment).
    if len(text) > MAX_EMAIL_INPUT:
        raise _Reject(f"longer than {MAX_EMAIL_INPUT} characters")
    try:
        addresses = getaddresses([text])
    except RecursionError:
        raise _Reject("comments nest too deeply") from None
    if len(addresses) != 1:
        raise _Reject("must be exactly one address")
    address = addresses[0][1]
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise _Reject("not an address of the form local@domain")
    try:
        domain = _fqdn(domain)
    except _Reject as exc:
        raise _Reject(f"bad domain: {exc}") from None
    return f"{local.lower()}@{domain}"


def _hex(value: str, length: int | None) -> str:
    text = value.strip().lower()
    if length is None:
        text = text.replace(":", "")
    if not _HEX.fullmatch(text):
        raise _Reject("not hexadecimal")
    if length is not None and len(text) != length:
        raise _Reject(f"must be exactly {length} hex digits, got {len(text)}")
    return text


def _file(value: str) -> str:
    text = value.strip().lower()
    if (len(text) in (32, 64) and _HEX.fullmatch(text)) or _UUID.fullmatch(text):
        return text
    raise _Reject("must be an MD5 (32 hex) or SHA3-256 (64 hex) digest or a UUID")


def _asn(value: str) -> str:
    match = _ASN.fullmatch(value.strip())
    number = int(match.group(1)) if match else 0
    if not 1 <= number <= 4_294_967_295:
        raise _Reject("must be AS<number> or a number between 1 and 4294967295")
    return str(number)


def _text(value: str, *, fold: bool) -> str:
    text = value.translate(_CONTROL_TO_SPACE).strip()
    if fold:
        text = text.lower()
    if not text:
        raise _Reject("must not be empty")
    if len(text) > MAX_TEXT_BYTES // 4 and len(text.encode()) > MAX_TEXT_BYTES:
        raise _Reject(f"longer than {MAX_TEXT_BYTES} bytes")
    return text


def _int(value: str) -> str:
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        raise _Reject("must be a non-negative whole number")
    digits = text.lstrip("0") or "0"
    if len(digits) > MAX_INT_DIGITS:  # int() refuses past 4,300 digits anyway
        raise _Reject(f"longer than {MAX_INT_DIGITS} digits")
    return digits


def _port(value: str) -> str:
    text = value.strip()
    if not _DIGITS.fullmatch(text) or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise _Reject("must be a port number between 1 and 65535")
    return str(int(text))


def _mac(value: str) -> str:
    digits = re.sub(r"[:.\-]", "", value.strip().lower())
    if not _MAC.fullmatch(digits):
        raise _Reject("must be 6 bytes in hex (aa:bb:cc:dd:ee:ff)")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise _Reject("not a UUID") from None


def _date(value: str) -> str:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _Reject("not a date (YYYY-MM-DD)") from None


_NORMALISERS: dict[DataType, Callable[[str, EntityType], str]] = {
    DataType.IP: lambda v, _: _ip(refang(v)),
    DataType.FQDN: lambda v, _: _fqdn(refang(v)),
    DataType.URL: lambda v, _: _url(refang(v, url=True)),
    DataType.EMAIL: lambda v, _: _email(refang(v)),
    DataType.HASH: lambda v, t: _hex(v, t.hex_length),
    DataType.FILE: lambda v, _: _file(v),
    DataType.ASN: lambda v, _: _asn(v),
    DataType.CIDR: lambda v, _: _cidr(v),
    DataType.ISTR: lambda v, _: _text(v, fold=True),
    DataType.STR: lambda v, _: _text(v, fold=False),
    DataType.INT: lambda v, _: _int(v),
    DataType.PORT: lambda v, _: _port(v),
    DataType.MAC: lambda v, _: _mac(v),
    DataType.UUID: lambda v, _: _uuid(v),
    DataType.DATE: lambda v, _: _date(v),
    DataType.HEX: lambda v, _: _hex(v, None),
}


def normalise(type_name: str, value: str) -> str:
    """The canonical text of ``value`` as the main attribute of a ``type_name`` entity.

    Raises ``UnknownEntityType`` when the type is not in the catalogue and
    ``NormalisationError`` (``.reason`` says why) when the value is not valid for it.
    """
    row = entity_type(type_name)
    if not isinstance(value, str):
        raise NormalisationError(type_name, "the value must be a string")
    try:
        normalised = _NORMALISERS[row.data_type](value, row)
        normalised.encode()  # entity IDs hash the UTF-8 bytes: lone surrogates cannot be one
    except _Reject as exc:
        raise NormalisationError(type_name, str(exc)) from None
    except UnicodeEncodeError:
        raise NormalisationError(type_name, "contains a lone surrogate (not UTF-8)") from None
    return normalised
