"""What a feed says of each record it reports: confidence, TLP and when it saw it (SPEC §5).

Importers read feed times as the feeds write them (``2026-07-24 13:50:06``, ``2026-03-07``,
``2023-01-13T00:00:00.000000+00:00``; UTC when no offset is written) and put them on the bodies
as RFC 3339. A value reported twice in one file keeps the highest confidence, the widest times
and the last TLP, as the store keeps them per source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["Seen", "feed_time", "tlp_of_tags"]

_TLP_TAGS = {
    "tlp:clear": "clear",
    "tlp:white": "clear",
    "tlp:green": "green",
    "tlp:amber": "amber",
    "tlp:amber+strict": "amber+strict",
    "tlp:red": "red",
}


def feed_time(value: object) -> datetime | None:
    """A feed's time as an aware datetime (UTC unless it says otherwise), or None when there is
    none or it cannot be read. A bare date is the start of that day."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        parsed = datetime(day.year, day.month, day.day)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def tlp_of_tags(tags: object) -> str | None:
    """The TLP marking among MISP-style tags (``tlp:amber``; names or ``{"name": ...}``)."""
    if not isinstance(tags, list):
        return None
    found = None
    for tag in tags:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str):
            found = _TLP_TAGS.get(name.strip().lower(), found)
    return found


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Seen:
    """A record's provenance as its feed gives it; ``fields`` are the body's fields.

    ``first`` after ``last`` (a feed that writes only the day of its last sighting) is read
    as one observation at ``first``.
    """

    confidence: int | None = None
    tlp: str | None = None
    first: datetime | None = None
    last: datetime | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None and self.first > self.last:
            object.__setattr__(self, "last", self.first)

    def merged(self, other: Seen) -> Seen:
        """This and ``other`` of the same source: the highest confidence, the widest times,
        ``other``'s TLP when it gives one."""
        confidence = self.confidence
        if other.confidence is not None and (confidence is None or other.confidence > confidence):
            confidence = other.confidence
        return Seen(
            confidence,
            other.tlp or self.tlp,
            _pick(min, self.first, other.first),
            _pick(max, self.last, other.last),
        )

    def fields(self, source: str | None) -> dict[str, Any]:
        """The provenance fields of a body: ``source`` and what is known (None left out)."""
        given: dict[str, Any] = {
            "source": source,
            "confidence": self.confidence,
            "tlp": self.tlp,
            "firstSeen": None if self.first is None else _rfc3339(self.first),
            "lastSeen": None if self.last is None else _rfc3339(self.last),
        }
        return {key: value for key, value in given.items() if value is not None}


def _pick(choose: Any, a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else choose(a, b)
