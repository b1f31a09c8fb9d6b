"""``POST /association`` on the fast lane: the same checks, job, publish and answers as the
aiohttp view (``ingest_api.views.writes.post_association``), its steps shared with it, without
aiohttp's request machinery. The route takes only what it can acknowledge or refuse for the
broker's sake: a request it gives back (None) is answered by the view, with the same body and
headers the view gives every error (bad JSON or item, credentials wrong or to be looked up in
the store, a missing role, the bodies in flight at their bound)."""

from __future__ import annotations

import functools
import time

import orjson
from aiohttp import web

from ingest_api.auth import Principal
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

    def answer(
        self,
        connection: FastLaneProtocol,
        headers: dict[str, str],
        body: bytes,
        *,
        keep_alive: bool,
    ) -> PendingAnswer | None:
        """The answer to come for the request (``headers``: those the route reads, by
        lower-case name), or None to give it back."""
        started = time.perf_counter()
        entry = RequestLog(request_id_for(headers.get("x-request-id")))
        token = REQUEST_LOG.set(entry)
        try:
            principal = self._caller(headers)
            if principal is None:
                return None
            try:
                value = orjson.loads(body)
            except orjson.JSONDecodeError:
                return None
            checked = check_association(value, self._rules.rules)
            if isinstance(checked, ItemProblem) or not self._budget.take_now(len(body)):
                return None
            note_user(principal.user_id)
            now = time.time()
            job_id = new_job_id()
            note_job(job_id)
            items = encode_job_items(job_id, [(0, checked)], principal, now)
            pending = PendingAnswer(connection)
            answered = functools.partial(
                self._answered, pending, entry, principal, job_id, now, started, len(body),
                keep_alive,
            )  # fmt: skip
            try:
                confirm = self._publisher.submit(_KIND, items)
            except _PUBLISH_ERRORS as exc:
                answered(exc)
            else:
                confirm.add_done_callback(lambda done: answered(done.exception()))
            return pending
        finally:
            REQUEST_LOG.reset(token)

    def _caller(self, headers: dict[str, str]) -> Principal | None:
        """The caller, when known without waiting and allowed to write."""
        try:
            principal = self._authenticator.authenticate_now(headers)
        except ApiError:
            return None
        return principal if principal is not None and principal.has_role(_ROLE) else None

    def _answered(
        self,
        pending: PendingAnswer,
        entry: RequestLog,
        principal: Principal,
        job_id: str,
        now: float,
        started: float,
        size: int,
        keep_alive: bool,
        error: BaseException | None,
    ) -> None:
        """Answer once the broker confirmed the job (202) or did not (413/503, or 500)."""
        token = REQUEST_LOG.set(entry)
        try:
            self._budget.release(size)
            code = None
            if error is None:
                headers = register_accepted(self._app, principal, _KIND, job_id, 1, now)
                status, body = 202, acknowledged_body(job_id)
            else:
                refusal = self._refusal(error)
                code = refusal.code
                status = refusal.status
                body, headers = refusal.parts()
            headers["x-request-id"] = entry.request_id
            data = wire.answer_bytes(status, headers.items(), body, keep_alive=keep_alive)
            log_request(entry, "POST", PATH, PATH, status, time.perf_counter() - started, code)
            pending.answer(data, close=not keep_alive)
        finally:
            REQUEST_LOG.reset(token)

    def _refusal(self, error: BaseException) -> ApiError:
        if isinstance(error, _PUBLISH_ERRORS):
            return publish_refusal(error, self._settings)
        log.error("request.crashed", method="POST", route=PATH, exc_info=error)
        return ApiError(500, "internal_error", "An unexpected error occurred; it has been logged.")
