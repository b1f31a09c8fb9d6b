"""The request middleware: request IDs, logs, metrics, and the error body on every non-2xx.

Every answer carries ``x-request-id`` (the client's, when it sent a sane one, else a random one).
``ApiError``s, the HTTP errors aiohttp raises itself (404, 405, 413, ...) and unexpected
exceptions (logged, answered 500) all leave with the standard error body. Metrics are labelled
with the route's canonical path (``unmatched`` when no route matched), never the raw URL.
Headers are never logged, so credentials cannot leak into logs.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import re
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Counter, Histogram

from ingest_api.errors import ApiError, error_response, reason_code
from workers.ground import metrics
from workers.ground.logs import get_logger

__all__ = ["observe_requests"]

log = get_logger(__name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


_request_ids = random.Random(os.urandom(32))


def new_request_id() -> str:
    """A random request ID (128 bits, hex) from a seeded PRNG: it correlates logs, it guards
    nothing, and os.urandom would cost a system call on every request."""
    return f"{_request_ids.getrandbits(128):032x}"


@functools.cache
def _request_counter(route: str, status: int) -> Counter:
    # Routes are the app's canonical paths (plus "unmatched"): a small, bounded set.
    return metrics.HTTP_REQUESTS.labels(route=route, status=str(status))


@functools.cache
def _request_timer(route: str) -> Histogram:
    return metrics.HTTP_REQUEST_SECONDS.labels(route=route)


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


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """See the module docstring."""
    sent_id = request.headers.get("x-request-id", "")
    request_id = sent_id if sent_id and _REQUEST_ID.fullmatch(sent_id) else new_request_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    route = _route_of(request)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _from_http_exception(request, exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("request.crashed", method=request.method, route=route)
        response = error_response(
            500, "internal_error", "An unexpected error occurred; it has been logged."
        )
    elapsed = time.perf_counter() - started
    if not response.prepared:
        response.headers["x-request-id"] = request_id
    _request_counter(route, response.status).inc()
    _request_timer(route).observe(elapsed)
    log.info(
        "request.completed",
        method=request.method,
        route=route,
        status=response.status,
        duration_ms=round(elapsed * 1000, 3),
    )
    return response
