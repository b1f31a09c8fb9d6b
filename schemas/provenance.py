"""Provenance on the wire (SPEC §5): the optional ``source``, ``confidence``, ``tlp``,
``firstSeen`` and ``lastSeen`` of association and entity bodies, and the ``sources`` a read
returns.

The request fields are declared once here as annotated types and used by every body of
``schemas.http``; ``provenance_of`` turns a checked body into the ``Provenance`` of the queue
envelope (times as seconds since the epoch), or None when the body carries none.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
)

from schemas.messages import TLP_MARKINGS, Provenance, Tlp

__all__ = [
    "NOT_PLAIN",
    "PROVENANCE_FIELDS",
    "Confidence",
    "SeenTime",
    "SourceName",
    "SourceResponse",
    "TlpMarking",
    "check_seen_order",
    "plain_provenance",
    "provenance_of",
]

MAX_SOURCE_LENGTH = 256


def _trimmed(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _tlp(value: Any) -> Any:
    """``TLP:AMBER+STRICT`` -> ``amber+strict``; TLP 1.0's ``white`` is 2.0's ``clear``."""
    if not isinstance(value, str):
        return value
    marking = value.strip().lower().removeprefix("tlp:").strip()
    return "clear" if marking == "white" else marking


SourceName = Annotated[
    Annotated[
        str,
        StringConstraints(
            min_length=1, max_length=MAX_SOURCE_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$"
        ),
    ]
    | None,
    BeforeValidator(_trimmed),
    Field(
        description="who reported it: a feed, an organisation, a STIX identity (the "
        "submitting user is recorded as a source of its own in any case)",
        examples=["threatfox"],
    ),
]
Confidence = Annotated[
    Annotated[StrictInt, Field(ge=0, le=100)] | None,
    Field(description="how sure the source is, 0-100", examples=[75]),
]
TlpMarking = Annotated[
    Tlp | None,
    BeforeValidator(_tlp),
    Field(
        description="TLP 2.0 marking: " + ", ".join(TLP_MARKINGS) + " (any case, 'TLP:' "
        "prefix allowed; 'white' reads as 'clear')",
        examples=["amber"],
    ),
]
SeenTime = Annotated[
    AwareDatetime | None,
    Field(
        description="when the source observed it (RFC 3339 with an offset); may predate ingestion",
        examples=["2024-02-08T19:20:49Z"],
    ),
]


class _HasProvenance(Protocol):
    source: str | None
    confidence: int | None
    tlp: Tlp | None
    firstSeen: datetime | None
    lastSeen: datetime | None


def check_seen_order(body: _HasProvenance) -> None:
    """Raise ``ValueError`` when ``firstSeen`` is after ``lastSeen`` (a model validator's
    error, reported as an invalid body)."""
    if body.firstSeen is not None and body.lastSeen is not None and body.firstSeen > body.lastSeen:
        raise ValueError("firstSeen is after lastSeen")


def provenance_of(body: _HasProvenance) -> Provenance | None:
    """The envelope's ``Provenance`` of a validated body; None when it gives none."""
    if (
        body.source is None
        and body.confidence is None
        and body.tlp is None
        and body.firstSeen is None
        and body.lastSeen is None
    ):
        return None
    return Provenance(
        source=body.source,
        confidence=body.confidence,
        tlp=body.tlp,
        first_seen=None if body.firstSeen is None else body.firstSeen.timestamp(),
        last_seen=None if body.lastSeen is None else body.lastSeen.timestamp(),
    )


class SourceResponse(BaseModel):
    """One source of a stored association or entity, as reads return it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the source name, or the user ID for kind 'user'")
    kind: Literal["source", "user"] = Field(
        description="'source': named in the input (a feed, an organisation); 'user': the "
        "user who submitted it"
    )
    confidence: int | None = Field(description="the highest confidence it gave, 0-100")
    tlp: Tlp | None = Field(description="the TLP marking it gave last")
    firstSeen: datetime | None = Field(description="the earliest time it observed it")
    lastSeen: datetime | None = Field(description="the latest time it observed it")


PROVENANCE_FIELDS: Final = frozenset({"source", "confidence", "tlp", "firstSeen", "lastSeen"})
"""The provenance fields of a body, as sent."""

NOT_PLAIN: Final = object()
"""What ``plain_provenance`` answers for values it leaves to the model to validate."""

_PLAIN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_time(value: Any) -> float | object | None:
    if value is None:
        return None
    if type(value) is not str or not _PLAIN_TIME.fullmatch(value):
        return NOT_PLAIN
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return NOT_PLAIN


def plain_provenance(body: dict[str, Any]) -> Provenance | object | None:
    """The provenance of a body whose provenance fields are in their plainest form (a trimmed
    printable source, an int confidence, a TLP marking as listed, RFC 3339 times with ``T``
    and an offset, in order), without running the validator: what ``provenance_of`` gives
    for it after validation. ``NOT_PLAIN`` for anything else, to be validated by the model
    (which then words the problem). Accepts nothing the model refuses."""
    source = body.get("source")
    confidence = body.get("confidence")
    tlp = body.get("tlp")
    if source is not None and (
        type(source) is not str
        or not 0 < len(source) <= MAX_SOURCE_LENGTH
        or source != source.strip()
        or _CONTROL.search(source)
    ):
        return NOT_PLAIN
    if confidence is not None and (type(confidence) is not int or not 0 <= confidence <= 100):
        return NOT_PLAIN
    if tlp is not None and tlp not in TLP_MARKINGS:
        return NOT_PLAIN
    first, last = _plain_time(body.get("firstSeen")), _plain_time(body.get("lastSeen"))
    if first is NOT_PLAIN or last is NOT_PLAIN:
        return NOT_PLAIN
    assert (first is None or isinstance(first, float)) and (last is None or isinstance(last, float))
    if first is not None and last is not None and first > last:
        return NOT_PLAIN
    if source is None and confidence is None and tlp is None and first is None and last is None:
        return None
    return Provenance(
        source=source, confidence=confidence, tlp=tlp, first_seen=first, last_seen=last
    )
