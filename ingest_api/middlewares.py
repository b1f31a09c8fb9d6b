"""The front's one middleware: request IDs, the access line, metrics, the bound on bodies in
flight, and the error body on every non-2xx.

Every answer carries ``x-request-id`` (the client's, when it sent a sane one, else a random one).
``ApiError``s, the HTTP errors aiohttp raises itself (404, 405, 413, ...) and unexpected
exceptions (logged, answered 500) all leave with the standard error body. Metrics are labelled
with the route's canonical path (``unmatched`` when no route matched), never the raw URL.

Each request is logged once, at INFO, when it is answered: ``request.completed`` with its
``request_id``, ``method``, ``path``, ``route``, ``status`` and ``duration_ms``, the ``code`` of
an error answer, and what the views noted (``workers.ground.logs.note_user``, ``note_job``,
``note``): the caller's ``user_id``, the ``job_id`` of a job made or answered with, its
``items``... Headers are never logged, so credentials cannot leak into logs.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ingest_api.body_budget import BodyBudget, reserved_size
from ingest_api.errors import ERROR_CODE, ApiError, error_response, internal_error, reason_code
from workers.ground import metrics
from workers.ground.logs import REQUEST_LOG, RequestLog, get_logger, log_info_fast

__all__ = ["log_request", "request_id_for", "request_middleware"]

log = get_logger(__name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


_request_ids = random.Random(os.urandom(32))


def request_id_for(sent_id: str | None) -> str:
    """The ID of a request: the client's ``x-request-id`` when it sent a sane one, else new."""
    return sent_id if sent_id and _REQUEST_ID.fullmatch(sent_id) else new_request_id()


def new_request_id() -> str:
    """A random request ID (128 bits, hex) from a seeded PRNG: it correlates logs, it guards
    nothing, and os.urandom would cost a system call on every request."""
    return f"{_request_ids.getrandbits(128):032x}"


@functools.cache
def _request_labels(route: str, status: int) -> tuple[str, str]:
    # Routes are the app's canonical paths (plus "unmatched"): a small, bounded set.
    return (route, str(status))


_REQUESTS = metrics.HTTP_REQUESTS_TALLY
_REQUEST_SECONDS = metrics.HTTP_REQUEST_SECONDS_TALLY


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _message_for(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"No resource at {request.method} {request.path[:200]}."
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"Method {exc.method} is not allowed here; allowed: {allowed}."
    if exc.status == 413:
        return "The body is too large."
    text = (exc.text or "").strip()
    return text if text and not text[:3].isdigit() else f"{exc.reason}."


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    headers = {}
    allow = exc.headers.get("Allow")
    if allow is not None:
        headers["Allow"] = allow
    code = "body_too_large" if exc.status == 413 else reason_code(exc.status)
    return error_response(exc.status, code, _message_for(request, exc), headers=headers)


def request_middleware(budget: BodyBudget | None = None, max_body: int = 0) -> Middleware:
    """The middleware of the module docstring; with ``budget``, a request with a body first
    reserves its bytes from it (``ingest_api.body_budget``; ``max_body``: the body limit)."""

    @web.middleware
    async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        entry = RequestLog(request_id_for(request.headers.get("x-request-id")))
        token = REQUEST_LOG.set(entry)
        try:
            # The view's answer, or the error answer of what it raised.
            try:
                size = None if budget is None else reserved_size(request, max_body)
                if budget is None or size is None:
                    response = await handler(request)
                else:
                    if not budget.take_now(size):
                        await budget.admit(size)
                    try:
                        response = await handler(request)
                    finally:
                        budget.release(size)
            except ApiError as exc:
                response = exc.to_response()
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = _from_http_exception(request, exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("request.crashed", method=request.method, route=_route_of(request))
                response = internal_error().to_response()
            _answered(request, response, entry, time.perf_counter() - started)
            return response
        finally:
            REQUEST_LOG.reset(token)

    return observe_requests


def _answered(
    request: web.Request, response: web.StreamResponse, entry: RequestLog, elapsed: float
) -> None:
    """Name the request in its answer, count it, time it and write its access line."""
    status = response.status
    if not response.prepared:
        response.headers["x-request-id"] = entry.request_id
    code = (response.get(ERROR_CODE) or reason_code(status)) if status >= 400 else None
    log_request(entry, request.method, request.path, _route_of(request), status, elapsed, code)


def log_request(
    entry: RequestLog,
    method: str,
    path: str,
    route: str,
    status: int,
    elapsed: float,
    code: str | None = None,
) -> None:
    """Count and time an answered request and write its access line (the module docstring):
    ``route`` is the canonical path of its route, ``code`` the error code of an error answer."""
    _REQUESTS.inc(_request_labels(route, status))
    _REQUEST_SECONDS.observe((route,), elapsed)
    line = {
        "request_id": entry.request_id,
        "user_id": entry.user_id,
        "job_id": entry.job_id,
        "method": method,
        "path": path[:_MAX_PATH],
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
    }
    if code is not None:
        line["code"] = code
    if entry.fields:
        line.update(entry.fields)
    log_info_fast("request.completed", line)


_MAX_PATH = 512
