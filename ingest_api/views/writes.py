"""Write endpoints (SPEC §3): checked at once, queued through the coalescing publisher, and
answered ``202 {"message": "acknowledged", "jobID": ...}`` only after the broker's confirm.

A bulk request is one job: its valid items are queued together in one message (all confirmed,
or a 503 and none acknowledged; a 413 when they cannot travel in one message); each item keeps
its 0-based position in the request as its index in the job. The job's ``total`` counts every
item queued and every child and link of its entities, which take the indexes after the last
position. A bulk with no valid item is a 400 whose body lists every item's error under
``rejected``.

A write with an ``Idempotency-Key`` goes into the job its key stands for
(``ingest_api.idempotency``): the answer to a retry names the first job, and its items are
processed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from ingest_api.auth import Principal, require_role
from ingest_api.bodies import JSON_TYPE, BulkChunk, NotJson, iter_bulk_chunks, read_json
from ingest_api.bulk_checks import AssociationChunkChecker, CheckedAssociation
from ingest_api.checks import (
    AssociationRequest,
    EntityRequest,
    ItemProblem,
    check_association,
    check_entity,
)
from ingest_api.errors import ApiError, json_response
from ingest_api.idempotency import (
    REPLAYED_HEADER,
    JobChoice,
    choose_job,
    idempotency_key,
    new_job,
    request_digest,
    whole_body_digest,
)
from ingest_api.paths import BASE
from ingest_api.publisher import TooLargeForOneMessage
from ingest_api.state import BULK_TURN, JOB_REGISTRY, PRINCIPAL, PUBLISHER, RULES, SETTINGS
from schemas import EntityItem, MessageKind, encode_item
from schemas.messages import AssociationItemEncoder
from schemas.rules import AssociationRules
from workers.ground import metrics
from workers.ground.errors import BrokerUnavailable, QueueFull
from workers.ground.logs import get_logger, note, note_job
from workers.ground.settings import Settings
from workers.store.records import JobHeader

__all__ = [
    "PUBLISH_ERRORS",
    "acknowledged_body",
    "delete_association",
    "encode_job_items",
    "post_association",
    "post_associations",
    "post_entities",
    "post_entity",
    "publish_refusal",
    "queue_job",
    "refuse_item",
    "register_accepted",
    "register_answered",
]

log = get_logger(__name__)

Checked = AssociationRequest | EntityRequest


# ---- building items ---------------------------------------------------------------------------


def _entity_item(checked: EntityRequest, meta: dict[str, Any], parts_from: int) -> EntityItem:
    return EntityItem.model_construct(
        **meta,
        entity=checked.entity,
        children=checked.children,
        links=checked.links,
        parts_from=parts_from,
    )


def _parts(checked: Checked) -> int:
    """Job indexes an item takes beyond its own: an entity's children and links."""
    return len(checked.children) + len(checked.links) if isinstance(checked, EntityRequest) else 0


def job_total(items: Sequence[tuple[int, Checked]]) -> int:
    """Items of a job: every queued item, and every child and link of its entities (SPEC §4)."""
    total = len(items)
    for _, checked in items:
        if isinstance(checked, EntityRequest):
            total += len(checked.children) + len(checked.links)
    return total


def encode_job_items(
    job_id: str, items: Sequence[tuple[int, Checked]], principal: Principal, now: float
) -> list[bytes]:
    """The queue items of one job, encoded; association items through the template encoder
    (the per-item cost of a bulk request), entity items through their model.

    Each item keeps its position in the request as its index; an entity's children, then its
    links, take the indexes after the last position, entity by entity (``parts_from``)."""
    total = job_total(items)
    encoder = AssociationItemEncoder(
        job=job_id, total=total, user=principal.user_id, groups=principal.groups, submitted_at=now
    )
    encoded = []
    next_part = items[-1][0] + 1 if items else 0
    for index, checked in items:
        if isinstance(checked, EntityRequest):
            meta = _meta(job_id, index, total, principal, now)
            encoded.append(encode_item(_entity_item(checked, meta, next_part)))
            next_part += _parts(checked)
        else:
            encoded.append(
                encoder.encode(
                    index,
                    checked.entity_id,
                    checked.related_id,
                    checked.association_type,
                    checked.provenance,
                )
            )
    return encoded


def _checker(kind: MessageKind, rules: AssociationRules) -> Callable[[Any], Checked | ItemProblem]:
    if kind is MessageKind.ENTITY:
        return lambda value: check_entity(value, rules)
    delete = kind is MessageKind.ASSOCIATION_DELETE
    return lambda value: check_association(value, rules, delete=delete)


# ---- publishing -------------------------------------------------------------------------------


PUBLISH_ERRORS = (TooLargeForOneMessage, QueueFull, BrokerUnavailable)
"""What the publisher raises for items it refused or could not get confirmed
(``publish_refusal`` answers each)."""


async def _publish(request: web.Request, kind: MessageKind, items: Sequence[bytes]) -> None:
    """Hand ``items`` to the publisher; 503 with ``Retry-After`` unless all are confirmed, 413
    when they cannot travel in one message (then nothing is queued)."""
    # No timer here: the publisher bounds each message's wait for its confirm by
    # publish_timeout, and a request waits at most for the message in flight, then its own.
    try:
        await request.app[PUBLISHER].publish(kind, items)
    except PUBLISH_ERRORS as exc:
        raise publish_refusal(exc, request.app[SETTINGS]) from exc


def publish_refusal(exc: Exception, settings: Settings) -> ApiError:
    """The answer to items the publisher refused or could not get confirmed (``exc``): a 413
    when they cannot travel in one message (``TooLargeForOneMessage``: then nothing is
    queued), else a 503 with ``Retry-After`` (counted and logged as a refusal)."""
    if isinstance(exc, TooLargeForOneMessage):
        # Wholly queued or wholly refused (SPEC §4): a request cannot be split over messages.
        return _too_large_for_one_message(exc.limit)
    metrics.BACKPRESSURE_RESPONSES.inc()
    retry_after = {"Retry-After": str(max(1, math.ceil(settings.publish_timeout)))}
    if isinstance(exc, QueueFull):
        log.warning("job.refused", reason="queue_full", error=str(exc))
        return ApiError(
            503, "queue_full", "The work queue is full; retry later.", headers=retry_after
        )
    log.warning("job.refused", reason="broker_unavailable", error=str(exc))
    return ApiError(
        503,
        "broker_unavailable",
        "The broker could not confirm the job in time; retry later.",
        headers=retry_after,
    )


def _too_large_for_one_message(limit: str) -> ApiError:
    return ApiError(
        413,
        "too_large_for_one_message",
        f"The request's items do not fit in one queue message ({limit}); "
        "send fewer or smaller items per request.",
    )


def _meta(job_id: str, index: int, total: int, principal: Principal, now: float) -> dict[str, Any]:
    return {
        "job": job_id,
        "index": index,
        "total": total,
        "user": principal.user_id,
        "groups": principal.groups,
        "submitted_at": now,
    }


def register_accepted(
    app: web.Application,
    principal: Principal,
    kind: MessageKind,
    job_id: str,
    total: int,
    now: float,
) -> dict[str, str]:
    """Count, note (in the access line) and register an acknowledged job; return the Location
    header."""
    metrics.ITEMS_ACKNOWLEDGED_TALLY.inc(_kind_label(kind), total)
    note(items=total)
    app[JOB_REGISTRY].add(
        JobHeader(
            job_id=job_id,
            kind=kind.value,
            owner=principal.user_id,
            groups=principal.groups,
            total=total,
            created_at=now,
        )
    )
    return {"Location": f"{BASE}/jobs/{job_id}"}


@functools.cache
def _kind_label(kind: MessageKind) -> tuple[str]:
    return (kind.value,)


def _answered(
    request: web.Request, kind: MessageKind, job: JobChoice, total: int, now: float
) -> dict[str, str]:
    """``register_answered`` for the caller of ``request``."""
    return register_answered(request.app, request[PRINCIPAL], kind, job, total, now)


def register_answered(
    app: web.Application,
    principal: Principal,
    kind: MessageKind,
    job: JobChoice,
    total: int,
    now: float,
) -> dict[str, str]:
    """The headers of the 202 for ``job``; a job sent now is registered as accepted (one not
    sent again, because its Idempotency-Key's first request got through, is known already)."""
    if job.publish:
        headers = register_accepted(app, principal, kind, job.job_id, total, now)
    else:
        headers = {"Location": f"{BASE}/jobs/{job.job_id}"}
    if job.replayed:
        headers[REPLAYED_HEADER] = "true"
    return headers


async def queue_job(
    request: web.Request,
    kind: MessageKind,
    job: JobChoice,
    encode: Callable[[], Sequence[bytes]],
    total: int,
    now: float,
) -> dict[str, str]:
    """Publish the ``total`` items of ``job`` (``choose_job``) when it must be sent, encoded by
    ``encode`` only then (503 unless all are confirmed); the headers of its 202."""
    if job.publish:
        await _publish(request, kind, encode())
    return _answered(request, kind, job, total, now)


def refuse_item(problem: ItemProblem) -> ApiError:
    """The 400 of an invalid item, counted."""
    metrics.ITEMS_INVALID.labels(code=problem.code).inc()
    return problem.to_api_error()


# ---- single writes ----------------------------------------------------------------------------


async def _single(request: web.Request, kind: MessageKind) -> tuple[str, Checked, dict[str, str]]:
    key = idempotency_key(request)
    value = await read_json(request, request.app[SETTINGS].max_body_bytes)
    checked = _checker(kind, request.app[RULES].rules)(value)
    if isinstance(checked, ItemProblem):
        raise refuse_item(checked)
    now = time.time()
    if key is None:  # what choose_job gives without a key, without awaiting it
        job = new_job()
    else:
        job = await choose_job(request, key, await whole_body_digest(request), now)
    note_job(job.job_id)
    items = [(0, checked)]
    if job.publish:
        await _publish(request, kind, encode_job_items(job.job_id, items, request[PRINCIPAL], now))
    return job.job_id, checked, _answered(request, kind, job, job_total(items), now)


def acknowledged_body(job_id: str) -> bytes:
    """The body of the 202 of a single write: what ``json_response`` gives for
    ``{"message": "acknowledged", "jobID": job_id}``, built by hand."""
    return b'{"message":"acknowledged","jobID":%s}' % orjson.dumps(job_id)


def _acknowledged_response(job_id: str, headers: dict[str, str]) -> web.Response:
    body = acknowledged_body(job_id)
    return web.Response(body=body, status=202, headers=headers, content_type=JSON_TYPE)


@require_role("reporter")
async def post_association(request: web.Request) -> web.StreamResponse:
    """``POST /association``: queue one association."""
    job_id, _, headers = await _single(request, MessageKind.ASSOCIATION)
    return _acknowledged_response(job_id, headers)


@require_role("reporter")
async def delete_association(request: web.Request) -> web.StreamResponse:
    """``DELETE /association``: queue the removal of one association type (or all of a pair)."""
    job_id, _, headers = await _single(request, MessageKind.ASSOCIATION_DELETE)
    return _acknowledged_response(job_id, headers)


@require_role("reporter")
async def post_entity(request: web.Request) -> web.StreamResponse:
    """``POST /entity``: queue one entity with its nested children and their links."""
    job_id, checked, headers = await _single(request, MessageKind.ENTITY)
    assert isinstance(checked, EntityRequest)
    return json_response(
        {"message": "acknowledged", "jobID": job_id, "entityID": checked.entity.id},
        status=202,
        headers=headers,
    )


# ---- bulk writes ------------------------------------------------------------------------------


def _least_encoded_size(checked: Checked) -> int:
    """A lower bound of the bytes ``checked`` takes in a queue message (entities only: their
    children and links make them grow far beyond their request body; 0 for associations)."""
    if not isinstance(checked, EntityRequest):
        return 0
    records = sum(len(r.id) + len(r.type) + 40 for r in (checked.entity, *checked.children))
    links = sum(len(k.entity_id) + len(k.related_id) + 30 for k in checked.links)
    return records + links


def _count_invalid(refused: Sequence[tuple[int, ItemProblem]]) -> None:
    counts: dict[str, int] = {}
    for _, problem in refused:
        counts[problem.code] = counts.get(problem.code, 0) + 1
    for code, count in counts.items():
        metrics.ITEMS_INVALID.labels(code=code).inc(count)


def _check_associations(
    chunk: BulkChunk, checker: AssociationChunkChecker
) -> tuple[list[CheckedAssociation], list[tuple[int, ItemProblem]]]:
    if not any(type(value) is NotJson for _, value in chunk):
        return checker.check(chunk)
    valid, refused = checker.check([item for item in chunk if type(item[1]) is not NotJson])
    refused += [
        (index, ItemProblem("invalid_json", value.message))
        for index, value in chunk
        if isinstance(value, NotJson)
    ]
    refused.sort(key=lambda entry: entry[0])
    return valid, refused


def _encode_associations(
    job_id: str, items: list[CheckedAssociation], principal: Principal, now: float
) -> list[bytes]:
    """The queue items of a bulk association job, each keeping its position in the request
    as its index (what ``_encode`` gives for the same items)."""
    encoder = AssociationItemEncoder(
        job=job_id,
        total=len(items),
        user=principal.user_id,
        groups=principal.groups,
        submitted_at=now,
    )
    return encoder.encode_many(items)


async def _bulk(request: web.Request, kind: MessageKind) -> web.Response:
    """A bulk request, read and checked a chunk at a time, one bulk after the other
    (``BULK_TURN``); the event loop serves other requests and the broker's confirms between
    two chunks, so that a large body does not hold it."""
    settings = request.app[SETTINGS]
    key = idempotency_key(request)
    digest = request_digest(request) if key else None
    rules = request.app[RULES].rules
    checker = None
    if kind is not MessageKind.ENTITY:
        checker = AssociationChunkChecker(rules, delete=kind is MessageKind.ASSOCIATION_DELETE)
    associations: list[CheckedAssociation] = []
    entities: list[tuple[int, Checked]] = []
    rejected: list[dict[str, Any]] = []
    least_size = 0
    chunks = iter_bulk_chunks(
        request,
        max_items=settings.bulk_max_items,
        max_bytes=settings.max_body_bytes,
        digest=digest,
        turn=request.app[BULK_TURN],
    )
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            if checker is not None:
                valid, refused = _check_associations(chunk, checker)
                associations += valid
            else:
                refused = []
                for index, value in chunk:
                    outcome = (
                        ItemProblem("invalid_json", value.message)
                        if isinstance(value, NotJson)
                        else check_entity(value, rules)
                    )
                    if isinstance(outcome, ItemProblem):
                        refused.append((index, outcome))
                        continue
                    entities.append((index, outcome))
                    # Refuse as soon as the items cannot fit in one message, rather than hold all.
                    least_size += _least_encoded_size(outcome)
                    if least_size > settings.publish_max_bytes:
                        raise _too_large_for_one_message(
                            f"at most {settings.publish_max_bytes} bytes of items per message"
                        )
            if refused:
                _count_invalid(refused)
                rejected += [{"index": index, "error": p.as_error()} for index, p in refused]
            await asyncio.sleep(0)  # let other requests run between chunks
    accepted = len(associations) + len(entities)
    if not accepted:
        if not rejected:
            raise ApiError(400, "invalid_body", "The bulk body holds no items.")
        raise ApiError(
            400,
            "no_valid_items",
            f"None of the {len(rejected)} items is valid; nothing was queued.",
            body_extra={"accepted": 0, "rejected": rejected},
        )
    now = time.time()
    job = await choose_job(request, key, digest.hexdigest() if digest else "", now)
    note_job(job.job_id)
    principal = request[PRINCIPAL]
    if job.publish:
        encoded = (
            _encode_associations(job.job_id, associations, principal, now)
            if checker is not None
            else encode_job_items(job.job_id, entities, principal, now)
        )
        await _publish(request, kind, encoded)
    total = len(associations) if checker is not None else job_total(entities)
    headers = _answered(request, kind, job, total, now)
    return json_response(
        {
            "message": "acknowledged",
            "jobID": job.job_id,
            "accepted": accepted,
            "rejected": rejected,
        },
        status=202,
        headers=headers,
    )


@require_role("reporter")
async def post_associations(request: web.Request) -> web.StreamResponse:
    """``POST /associations``: queue the valid associations of an NDJSON or JSON-array body."""
    return await _bulk(request, MessageKind.ASSOCIATION)


@require_role("reporter")
async def post_entities(request: web.Request) -> web.StreamResponse:
    """``POST /entities``: queue the valid entities of an NDJSON or JSON-array body."""
    return await _bulk(request, MessageKind.ENTITY)
