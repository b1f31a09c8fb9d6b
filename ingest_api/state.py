"""Typed keys of the application and request state, shared by the app factory and the views."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ingest_api.auth import AUTHENTICATOR, PRINCIPAL
from workers.ground.settings import Settings
from workers.queue.base import JobQueue
from workers.store.base import Store

if TYPE_CHECKING:
    from ingest_api.jobs import JobRegistry
    from ingest_api.publisher import CoalescingPublisher
    from workers.rules_cache import RulesCache

__all__ = [
    "AUTHENTICATOR",
    "BULK_TURN",
    "JOB_REGISTRY",
    "OPENAPI_DOCUMENT",
    "PRINCIPAL",
    "PUBLISHER",
    "QUEUE",
    "RULES",
    "SETTINGS",
    "STORE",
]

SETTINGS = web.AppKey("settings", Settings)
QUEUE = web.AppKey("queue", JobQueue)
STORE = web.AppKey("store", Store)
PUBLISHER: web.AppKey[CoalescingPublisher] = web.AppKey("publisher")
RULES: web.AppKey[RulesCache] = web.AppKey("rules")
JOB_REGISTRY: web.AppKey[JobRegistry] = web.AppKey("job_registry")
OPENAPI_DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document")
BULK_TURN = web.AppKey("bulk_turn", asyncio.Lock)
"""Held by the bulk request whose items are being parsed and checked: one at a time, in the
order they asked, so that each is done (and published) as soon as it can be, and the event
loop, free between two chunks, is never long away from the broker's confirms."""
