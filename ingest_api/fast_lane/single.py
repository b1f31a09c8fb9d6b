"""``POST /association`` on the fast lane: the same steps as the aiohttp view
(``ingest_api.views.writes.post_association`` behind ``request_middleware``), shared with it,
in the same order, with the same answers, without aiohttp's request machinery: the body
budget, the caller (401, 403), the Idempotency-Key (400), the JSON body and the item (400),
the job (a new one, or the one the key stands for: 422, 503), the publish and its confirm
(202, or 413/503), and one access line. A check added to the view is added here too.

Most requests are answered without awaiting anything but the confirm; a caller whose API key
must be looked up in the store, a body that must wait for room in the budget, and a write with
an Idempotency-Key (its job is chosen in the store) take a task of their own for that wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ingest_api.auth import Principal, missing_role
from ingest_api.bodies import invalid_json
from ingest_api.body_budget import BODY_BUDGET
from ingest_api.checks import AssociationRequest, ItemProblem, check_association
from ingest_api.errors import ApiError, internal_error
from ingest_api.fast_lane import wire
from ingest_api.fast_lane.protocol import FastLaneProtocol, PendingAnswer
from ingest_api.idempotency import (
    JobChoice,
    body_digest,
    checked_key,
    choose_keyed_job,
    new_job,
)
from ingest_api.middlewares import log_request, request_id_for
from ingest_api.paths import BASE
from ingest_api.state import AUTHENTICATOR, PUBLISHER, RULES, SETTINGS
from ingest_api.views.writes import (
    PUBLISH_ERRORS,
    acknowledged_body,
    encode_job_items,
    publish_refusal,
    refuse_item,
    register_answered,
)
from schemas import MessageKind
from workers.ground.logs import REQUEST_LOG, RequestLog, get_logger, note_job, note_user

__all__ = ["PATH", "SingleAssociationRoute"]

log = get_logger(__name__)

PATH = f"{BASE}/association"
_KIND = MessageKind.ASSOCIATION
_ROLE = "reporter"


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
            self._in_task(self._answer_after_wait(request))
            return request.answer
        finally:
            REQUEST_LOG.reset(token)

    async def _answer_after_wait(self, request: _Request) -> None:
        """``answer`` once the body budget has room and the caller is known."""
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
        """Check the caller's role, the Idempotency-Key, the body and the item; choose the job
        (in a task of its own with a key) and hand the item to the publisher."""
        note_user(principal.user_id)
        if not principal.has_role(_ROLE):
            self._refuse(request, missing_role(_ROLE))
            return
        sent_key = request.headers.get("idempotency-key")
        try:
            key = checked_key(() if sent_key is None else (sent_key,))
            value = orjson.loads(request.body)
        except ApiError as exc:
            self._refuse(request, exc)
            return
        except orjson.JSONDecodeError as exc:
            self._refuse(request, invalid_json(exc))
            return
        checked = check_association(value, self._rules.rules)
        if isinstance(checked, ItemProblem):
            self._refuse(request, refuse_item(checked))
            return
        now = time.time()
        if key is None:
            job = new_job()
            self._publish(request, principal, checked, job, now)
            return
        self._in_task(self._choose(request, principal, checked, key, now))

    def _in_task(self, wait: Coroutine[Any, Any, None]) -> None:
        """Run ``wait`` in a task of its own, kept until it ends."""
        task = asyncio.get_running_loop().create_task(wait)
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _choose(
        self,
        request: _Request,
        principal: Principal,
        checked: AssociationRequest,
        key: str,
        now: float,
    ) -> None:
        """``_publish`` into the job the key stands for (``ingest_api.idempotency``)."""
        digest = body_digest("POST", PATH, request.body)
        try:
            job = await choose_keyed_job(self._app, principal.user_id, key, digest, now)
        except ApiError as exc:
            self._refuse(request, exc)
        except Exception as exc:
            self._refuse(request, self._crashed(exc))
        else:
            self._publish(request, principal, checked, job, now)

    def _publish(
        self,
        request: _Request,
        principal: Principal,
        checked: AssociationRequest,
        job: JobChoice,
        now: float,
    ) -> None:
        """Hand the item of ``job`` to the publisher when it must be sent; answer once it is
        confirmed, or at once when the broker already took it."""
        note_job(job.job_id)
        if not job.publish:
            self._accepted(request, principal, job, now)
            return
        items = encode_job_items(job.job_id, [(0, checked)], principal, now)
        try:
            confirm = self._publisher.submit(_KIND, items)
        except PUBLISH_ERRORS as exc:
            self._refuse(request, publish_refusal(exc, self._settings))
            return
        confirm.add_done_callback(
            lambda done: self._confirmed(request, principal, job, now, done.exception())
        )

    def _confirmed(
        self,
        request: _Request,
        principal: Principal,
        job: JobChoice,
        now: float,
        error: BaseException | None,
    ) -> None:
        token = REQUEST_LOG.set(request.log)
        try:
            if error is None:
                self._accepted(request, principal, job, now)
            elif isinstance(error, PUBLISH_ERRORS):
                self._refuse(request, publish_refusal(error, self._settings))
            else:
                self._refuse(request, self._crashed(error))
        finally:
            REQUEST_LOG.reset(token)

    def _accepted(
        self, request: _Request, principal: Principal, job: JobChoice, now: float
    ) -> None:
        headers = register_answered(self._app, principal, _KIND, job, 1, now)
        self._send(request, 202, headers, acknowledged_body(job.job_id), None)

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
        request.answer.answer(data)

    @staticmethod
    def _crashed(error: BaseException) -> ApiError:
        log.error("request.crashed", method="POST", route=PATH, exc_info=error)
        return internal_error()
