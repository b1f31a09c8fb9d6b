"""``POST /association`` on the fast lane: the same steps as the aiohttp view
(``ingest_api.views.writes.post_association`` behind ``request_middleware``), shared with it,
in the same order, with the same answers, without aiohttp's request machinery: the body
budget, the caller (401, 403), the JSON body and the item (400), the publish and its confirm
(202, or 413/503), and one access line.

Most requests are answered without awaiting anything but the confirm; a caller whose API key
must be looked up in the store, or a body that must wait for room in the budget, takes a task
of its own for that wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from ingest_api.auth import Principal, missing_role
from ingest_api.bodies import invalid_json
from ingest_api.body_budget import BODY_BUDGET
from ingest_api.checks import ItemProblem, check_association
from ingest_api.errors import ApiError
from ingest_api.fast_lane import wire
from ingest_api.fast_lane.protocol import FastLaneProtocol, PendingAnswer
from ingest_api.middlewares import log_request, request_id_for
from ingest_api.paths import BASE
from ingest_api.publisher import TooLargeForOneMessage
from ingest_api.state import AUTHENTICATOR, PUBLISHER, RULES, SETTINGS
from ingest_api.views.writes import (
    acknowledged_body,
    encode_job_items,
    publish_refusal,
    refuse_item,
    register_accepted,
)
from schemas import MessageKind, new_job_id
from workers.ground.errors import BrokerUnavailable, QueueFull
from workers.ground.logs import REQUEST_LOG, RequestLog, get_logger, note_job, note_user

__all__ = ["PATH", "SingleAssociationRoute"]

log = get_logger(__name__)

PATH = f"{BASE}/association"
_KIND = MessageKind.ASSOCIATION
_ROLE = "reporter"
_PUBLISH_ERRORS = (TooLargeForOneMessage, QueueFull, BrokerUnavailable)


@dataclass(slots=True)
class _Request:
    """One request of the route, from the moment the lane took it to its answer."""

    answer: PendingAnswer
    log: RequestLog
    headers: Mapping[str, str]
    body: bytes
    keep_alive: bool
    started: float
    reserved: int = 0  # bytes of the body budget held


class SingleAssociationRoute:
    """See the module docstring. Made once the application has started (its publisher, rules
    and job registry exist)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._settings = app[SETTINGS]
        self._authenticator = app[AUTHENTICATOR]
        self._budget = app[BODY_BUDGET]
        self._publisher = app[PUBLISHER]
        self._rules = app[RULES]
        self._waiting: set[asyncio.Task[None]] = set()

    def answer(
        self,
        connection: FastLaneProtocol,
        headers: Mapping[str, str],
        body: bytes,
        *,
        keep_alive: bool,
    ) -> PendingAnswer:
        """The answer to come for a request (``headers``: those the route reads, by lower-case
        name)."""
        request = _Request(
            PendingAnswer(connection),
            RequestLog(request_id_for(headers.get("x-request-id"))),
            headers,
            body,
            keep_alive,
            time.perf_counter(),
        )
        token = REQUEST_LOG.set(request.log)
        try:
            if self._budget.take_now(len(body)):
                request.reserved = len(body)
                try:
                    principal = self._authenticator.authenticate_now(headers)
                except ApiError as exc:
                    self._refuse(request, exc)
                    return request.answer
                if principal is not None:
                    self._queue(request, principal)
                    return request.answer
            task = asyncio.get_running_loop().create_task(self._answer_after_wait(request))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)
            return request.answer
        finally:
            REQUEST_LOG.reset(token)

    async def _answer_after_wait(self, request: _Request) -> None:
        """``answer`` once the body budget has room and the caller is known."""
        REQUEST_LOG.set(request.log)  # this task's own context
        try:
            if not request.reserved:
                await self._budget.admit(len(request.body))
                request.reserved = len(request.body)
            principal = await self._authenticator.authenticate(request.headers)
        except ApiError as exc:
            self._refuse(request, exc)
        except Exception as exc:
            self._refuse(request, self._crashed(exc))
        else:
            self._queue(request, principal)

    def _queue(self, request: _Request, principal: Principal) -> None:
        """Check the caller's role, the body and the item; hand the item to the publisher."""
        note_user(principal.user_id)
        if not principal.has_role(_ROLE):
            self._refuse(request, missing_role(_ROLE))
            return
        try:
            value = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            self._refuse(request, invalid_json(exc))
            return
        checked = check_association(value, self._rules.rules)
        if isinstance(checked, ItemProblem):
            self._refuse(request, refuse_item(checked))
            return
        now = time.time()
        job_id = new_job_id()
        note_job(job_id)
        items = encode_job_items(job_id, [(0, checked)], principal, now)
        try:
            confirm = self._publisher.submit(_KIND, items)
        except _PUBLISH_ERRORS as exc:
            self._refuse(request, publish_refusal(exc, self._settings))
            return
        confirm.add_done_callback(
            lambda done: self._confirmed(request, principal, job_id, now, done.exception())
        )

    def _confirmed(
        self,
        request: _Request,
        principal: Principal,
        job_id: str,
        now: float,
        error: BaseException | None,
    ) -> None:
        token = REQUEST_LOG.set(request.log)
        try:
            if error is not None:
                self._refuse(
                    request,
                    publish_refusal(error, self._settings)
                    if isinstance(error, _PUBLISH_ERRORS)
                    else self._crashed(error),
                )
                return
            headers = register_accepted(self._app, principal, _KIND, job_id, 1, now)
            self._send(request, 202, headers, acknowledged_body(job_id), None)
        finally:
            REQUEST_LOG.reset(token)

    def _refuse(self, request: _Request, error: ApiError) -> None:
        body, headers = error.parts()
        self._send(request, error.status, headers, body, error.code)

    def _send(
        self,
        request: _Request,
        status: int,
        headers: dict[str, str],
        body: bytes,
        code: str | None,
    ) -> None:
        """Release the request's budget, write its access line and its answer."""
        if request.reserved:
            self._budget.release(request.reserved)
            request.reserved = 0
        headers["x-request-id"] = request.log.request_id
        data = wire.answer_bytes(status, headers.items(), body, keep_alive=request.keep_alive)
        elapsed = time.perf_counter() - request.started
        log_request(request.log, "POST", PATH, PATH, status, elapsed, code)
        request.answer.answer(data, close=not request.keep_alive)

    @staticmethod
    def _crashed(error: BaseException) -> ApiError:
        log.error("request.crashed", method="POST", route=PATH, exc_info=error)
        return ApiError(500, "internal_error", "An unexpected error occurred; it has been logged.")
