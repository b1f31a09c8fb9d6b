"""Operational endpoints outside the base path: liveness, readiness, metrics, OpenAPI."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest_api.errors import error_response, json_response
from ingest_api.state import OPENAPI_DOCUMENT, QUEUE, STORE
from workers.ground.logs import get_logger

__all__ = ["healthz", "metrics", "openapi", "readyz"]

log = get_logger(__name__)
_PING_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.StreamResponse:
    """200 ``{"status": "ok"}`` while the process serves requests."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """200 when the broker connection is up and the store answers a ping; else 503 naming
    what failed in the message."""
    checks = {"broker": "ok", "store": "ok"}
    if not request.app[QUEUE].connected:
        checks["broker"] = "unavailable"
    try:
        await asyncio.wait_for(request.app[STORE].ping(), _PING_TIMEOUT)
    except Exception as exc:  # any failure means "not ready", whatever the adapter raised
        log.warning("readiness.store_failed", error=str(exc))
        checks["store"] = "unavailable"
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return error_response(
            503,
            "not_ready",
            f"Not ready: {' and '.join(failed)} unavailable.",
        )
    return json_response({"status": "ready", "checks": checks})


async def metrics(request: web.Request) -> web.StreamResponse:
    """Every Prometheus metric of this process, in the text exposition format."""
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI 3.1 document of this app."""
    return json_response(request.app[OPENAPI_DOCUMENT])
