"""A TAXII 2.1 poller: discovery, collections, pages of objects, and what was already read.

``TaxiiPoller.collection(url, collection_id)`` finds a collection from a discovery URL (its
default API root first, then the others) or from an API root URL. ``TaxiiPoller.pages`` reads
its objects page by page (``limit``, then ``next`` while the server says ``more``), from
``added_after`` on; each page comes with the ``X-TAXII-Date-Added-Last`` the server sent, the
point a later poll resumes after. ``PollState`` keeps that point per collection in a JSON file,
written atomically, so a re-run fetches only what was added since.

A page is an arbitrary cut of a collection: its relationships may point at objects of an
earlier page, or of an earlier poll. ``Context`` remembers the objects of the run and
``TaxiiPoller.fetch`` reads a missing one from the server by ID, so that every page can be
sent with the objects its references need (``referenced_ids``).

Never resolves or contacts anything named in the objects: only the TAXII server is read.
"""

from __future__ import annotations

import json
import os
import tempfile
from base64 import b64encode
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urljoin

import aiohttp
import orjson

from schemas.stix.vocabulary import TLP_MARKINGS

TAXII_TYPE = "application/taxii+json;version=2.1"
DEFAULT_LIMIT = 1000
"""Objects asked for per page when the caller names no limit."""
DATE_ADDED_LAST = "X-TAXII-Date-Added-Last"


def _listed(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else nothing (a server may answer anything)."""
    return value if isinstance(value, list) else []


class TaxiiError(Exception):
    """A TAXII server that cannot be polled: unreachable, refusing, or not TAXII 2.1."""


@dataclass(frozen=True, slots=True)
class Collection:
    """A readable collection: its objects URL, ID and title."""

    objects_url: str
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of objects and the ``X-TAXII-Date-Added-Last`` it came with (None when the
    server sent none)."""

    objects: list[dict[str, Any]]
    added_last: str | None
    more: bool


class TaxiiPoller:
    """Reads one TAXII 2.1 server (HTTP basic authentication when ``user`` is given)."""

    def __init__(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        headers = {"Accept": TAXII_TYPE}
        if user:
            token = b64encode(f"{user}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        )

    async def __aenter__(self) -> TaxiiPoller:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._session.close()

    async def _get(
        self, url: str, params: dict[str, str] | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        try:
            async with self._session.get(url, params=params) as response:
                raw = await response.read()
                if response.status in (401, 403):
                    raise TaxiiError(f"{url} refused the credentials (HTTP {response.status})")
                if response.status != 200:
                    raise TaxiiError(f"{url} answered HTTP {response.status}: {raw[:200]!r}")
                headers = response.headers
        except aiohttp.ClientError as exc:
            raise TaxiiError(f"{url} cannot be reached: {exc}") from None
        except TimeoutError:
            raise TaxiiError(f"{url} did not answer in time") from None
        try:
            return orjson.loads(raw), headers
        except orjson.JSONDecodeError:
            raise TaxiiError(f"{url} did not answer TAXII JSON") from None

    async def collection(self, url: str, collection_id: str) -> Collection:
        """The collection ``collection_id`` (its ID or title) of the server at ``url``: a
        discovery URL (``.../taxii2/``) or an API root URL."""
        base = url if url.endswith("/") else url + "/"
        document, _ = await self._get(base)
        if not isinstance(document, dict):
            raise TaxiiError(f"{base} is not a TAXII 2.1 discovery or API root resource")
        if "api_roots" in document:
            roots = [str(root) for root in _listed(document.get("api_roots"))]
            default = document.get("default")
            if isinstance(default, str):
                roots = [default, *(root for root in roots if root != default)]
            roots = [urljoin(base, root if root.endswith("/") else root + "/") for root in roots]
        else:
            roots = [base]
        for root in roots:
            found = await self._find(root, collection_id)
            if found is not None:
                return found
        raise TaxiiError(f"no collection {collection_id!r} in {', '.join(roots) or base}")

    async def _find(self, root: str, collection_id: str) -> Collection | None:
        document, _ = await self._get(urljoin(root, "collections/"))
        collections = document.get("collections") if isinstance(document, dict) else None
        for entry in _listed(collections):
            if not isinstance(entry, dict):
                continue
            if collection_id in (entry.get("id"), entry.get("title")):
                if entry.get("can_read") is False:
                    raise TaxiiError(f"the collection {collection_id!r} cannot be read")
                cid = str(entry.get("id"))
                return Collection(
                    urljoin(root, f"collections/{cid}/objects/"), cid, str(entry.get("title", ""))
                )
        return None

    async def pages(
        self, collection: Collection, *, added_after: str | None, limit: int = DEFAULT_LIMIT
    ) -> AsyncIterator[Page]:
        """The collection's objects added after ``added_after`` (all when None), page by
        page. ``limit`` is always sent (some servers need it beside ``next``); a server
        gives at most its own page size."""
        params: dict[str, str] = {"limit": str(limit)}
        if added_after:
            params["added_after"] = added_after
        while True:
            envelope, headers = await self._get(collection.objects_url, params)
            if not isinstance(envelope, dict):
                raise TaxiiError(f"{collection.objects_url} did not answer an envelope")
            objects = [obj for obj in _listed(envelope.get("objects")) if isinstance(obj, dict)]
            more = envelope.get("more") is True
            last = headers.get(DATE_ADDED_LAST)
            yield Page(objects, str(last) if last else None, more)
            following = envelope.get("next")
            if not more or not following:
                return
            params["next"] = str(following)

    async def fetch(self, collection: Collection, object_id: str) -> dict[str, Any] | None:
        """The latest version of the object ``object_id`` of the collection, None when the
        server has none."""
        url = urljoin(collection.objects_url, f"{quote(object_id, safe='')}/")
        try:
            envelope, _ = await self._get(url)
        except TaxiiError:
            return None
        versions = envelope.get("objects") if isinstance(envelope, dict) else None
        found = [obj for obj in _listed(versions) if isinstance(obj, dict)]
        return found[-1] if found else None


_REFERENCE_CONTAINERS = frozenset({"report", "grouping", "note", "opinion"})
"""Objects whose ``object_refs`` only list what they are about: their targets are not
fetched (a report may list a whole collection)."""


def referenced_ids(obj: Mapping[str, Any]) -> set[str]:
    """The IDs an object needs to be understood: the ends of a relationship or sighting, the
    objects of an observed-data, an observable's embedded references, its creator and its
    markings (predefined TLP markings need no object)."""
    found: set[str] = set()
    for key, value in obj.items():
        if not key.endswith(("_ref", "_refs")):
            continue
        if key == "object_refs" and obj.get("type") in _REFERENCE_CONTAINERS:
            continue
        for ref in value if isinstance(value, list) else (value,):
            if isinstance(ref, str) and "--" in ref and ref not in TLP_MARKINGS:
                found.add(ref)
    return found


class Context:
    """The objects of this run by ID (at most ``limit``, the oldest forgotten first), from
    which a page borrows the objects its references need."""

    def __init__(self, limit: int = 100_000) -> None:
        self._objects: dict[str, dict[str, Any]] = {}
        self._limit = limit

    def remember(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            oid = obj.get("id")
            if isinstance(oid, str):
                self._objects.pop(oid, None)
                self._objects[oid] = obj
        while len(self._objects) > self._limit:
            del self._objects[next(iter(self._objects))]

    def get(self, object_id: str) -> dict[str, Any] | None:
        return self._objects.get(object_id)


async def with_references(
    poller: TaxiiPoller,
    collection: Collection,
    page: list[dict[str, Any]],
    context: Context,
    *,
    max_fetches: int = 500,
) -> list[dict[str, Any]]:
    """``page`` followed by the objects its references need that it lacks, from ``context``
    or fetched from the collection (at most ``max_fetches``; a reference found nowhere stays
    dangling and is accounted as such by the front)."""
    have = {obj.get("id") for obj in page}
    added: list[dict[str, Any]] = []
    wanted = set().union(*(referenced_ids(obj) for obj in page)) - have
    fetches = 0
    for _ in range(2):  # the borrowed objects' own creators and markings
        more: set[str] = set()
        for ref in sorted(wanted):
            found = context.get(ref)
            if found is None and fetches < max_fetches:
                fetches += 1
                found = await poller.fetch(collection, ref)
            if found is not None:
                added.append(found)
                have.add(ref)
                more |= {
                    r for r in referenced_ids(found) if r.startswith(("identity--", "marking-"))
                }
        wanted = more - have
    return page + added


class PollState:
    """Where each collection's last poll ended (``added_after`` of the next), in a JSON file:
    ``{"<objects URL>": {"added_after": "<timestamp>"}}``. Each ``advance`` rewrites the
    file atomically (a crash leaves the previous state, never a torn one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise TaxiiError(f"the state file {path} cannot be read: {exc}") from None
        self._state: dict[str, Any] = loaded if isinstance(loaded, dict) else {}

    def added_after(self, collection: Collection) -> str | None:
        entry = self._state.get(collection.objects_url)
        value = entry.get("added_after") if isinstance(entry, dict) else None
        return value if isinstance(value, str) else None

    def advance(self, collection: Collection, added_after: str) -> None:
        self._state[collection.objects_url] = {"added_after": added_after}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".taxii-state-")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(self._state, out, indent=2, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
