"""The application factory of the ingest front (routes, state, lifecycle)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ingest_api.auth import Authenticator
from ingest_api.body_budget import BODY_BUDGET, BodyBudget
from ingest_api.jobs import JobRegistry
from ingest_api.middlewares import request_middleware
from ingest_api.openapi import openapi_document
from ingest_api.publisher import CoalescingPublisher
from ingest_api.queue_depth import QueueDepthSampler
from ingest_api.routes import ROUTES
from ingest_api.state import (
    AUTHENTICATOR,
    BULK_TURN,
    JOB_REGISTRY,
    OPENAPI_DOCUMENT,
    PUBLISHER,
    QUEUE,
    RULES,
    SETTINGS,
    STORE,
)
from workers.ground.settings import Settings
from workers.queue.base import JobQueue
from workers.rules_cache import RulesCache
from workers.store.base import Store

__all__ = ["create_app"]

_DRAIN_TIMEOUT = 10.0


def _backends(queue: JobQueue, store: Store) -> Callable[[web.Application], AsyncIterator[None]]:
    async def backends(app: web.Application) -> AsyncIterator[None]:
        await store.start()
        try:
            await queue.start()
            try:
                yield
            finally:
                await queue.close()
        finally:
            await store.close()

    return backends


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    publisher = CoalescingPublisher(
        app[QUEUE],
        max_items=settings.publish_max_items,
        max_bytes=settings.publish_max_bytes,
        timeout=settings.publish_timeout,
        max_in_flight=settings.publish_max_in_flight,
    )
    rules = RulesCache(app[STORE], settings.types_refresh_seconds)
    await rules.start()
    registry = JobRegistry(app[STORE])
    await registry.start()
    depth = QueueDepthSampler(app[QUEUE])
    depth.start()
    app[PUBLISHER] = publisher
    app[RULES] = rules
    app[JOB_REGISTRY] = registry
    try:
        yield
    finally:
        # Requests still waiting for a confirm get their answer before the queue closes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(publisher.wait_idle(), _DRAIN_TIMEOUT)
        await depth.stop()
        await registry.close()
        await rules.stop()


def create_app(
    settings: Settings, *, queue: JobQueue, store: Store, manage_backends: bool = True
) -> web.Application:
    """The front as an aiohttp application.

    On start-up (``cleanup_ctx``) it starts ``store`` and ``queue`` when ``manage_backends``
    (closing them on clean-up), then the coalescing publisher, the association rules cache
    (which reads the custom types, so a store that cannot be read fails the start-up) and the
    background job registry. Bodies are limited to ``settings.max_body_bytes`` each, and to
    ``settings.max_body_bytes_in_flight`` at once (``ingest_api.body_budget``). The routes are
    those of ``ingest_api.routes.ROUTES`` (a GET answers no HEAD), and ``/openapi.json`` serves
    the document rendered from the same table.
    """
    budget = BodyBudget(settings.max_body_bytes_in_flight, settings.body_wait_seconds)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_middleware(budget, settings.max_body_bytes)],
    )
    app[SETTINGS] = settings
    app[BODY_BUDGET] = budget
    app[BULK_TURN] = asyncio.Lock()
    app[QUEUE] = queue
    app[STORE] = store
    app[AUTHENTICATOR] = Authenticator(settings, store)
    app[OPENAPI_DOCUMENT] = openapi_document()
    if manage_backends:
        app.cleanup_ctx.append(_backends(queue, store))
    app.cleanup_ctx.append(_services)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app
