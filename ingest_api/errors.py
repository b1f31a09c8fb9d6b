"""HTTP errors of the front and the one shape every non-2xx answer has (SPEC §3).

Body: ``{"error": {"code": "<snake_case>", "message": "<sentence>", "errorID": "<uuid>"}}``
(plus ``errCode`` for ``association_not_allowed`` and any extra fields of the error), headers
``x-error`` (the message) and ``x-error-id`` (the same uuid).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from aiohttp import web

from workers.ground.errors import StoreUnavailable

__all__ = [
    "ERROR_CODE",
    "ApiError",
    "error_parts",
    "error_response",
    "internal_error",
    "json_response",
    "reason_code",
    "store_errors",
]

# Codes for the errors aiohttp raises on its own (router, body size, ...).
_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


ERROR_CODE: web.ResponseKey[str] = web.ResponseKey("error_code")
"""The ``code`` of an error answer, kept on the response for the request's access line."""


def reason_code(status: int) -> str:
    """The snake_case error code used for a bare HTTP status."""
    return _STATUS_CODES.get(status, f"http_{status}")


class ApiError(Exception):
    """Raise from a view to answer ``status`` with the standard error body.

    ``err_code`` adds ThreatConnect's ``errCode``; ``extra`` adds fields to the error object
    (e.g. ``candidates``); ``body_extra`` adds top-level fields (e.g. ``rejected``);
    ``headers`` adds response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        err_code: str | None = None,
        extra: Mapping[str, Any] | None = None,
        body_extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.err_code = err_code
        self.extra = dict(extra or {})
        self.body_extra = dict(body_extra or {})
        self.headers = dict(headers or {})

    def parts(self) -> tuple[bytes, dict[str, str]]:
        """The body and headers (but Content-Type) of ``to_response``."""
        return error_parts(
            self.code,
            self.message,
            err_code=self.err_code,
            extra=self.extra,
            body_extra=self.body_extra,
            headers=self.headers,
        )

    def to_response(self) -> web.Response:
        return error_response(
            self.status,
            self.code,
            self.message,
            err_code=self.err_code,
            extra=self.extra,
            body_extra=self.body_extra,
            headers=self.headers,
        )


def internal_error() -> ApiError:
    """The 500 of an unexpected error (the caller logs it as ``request.crashed``)."""
    return ApiError(500, "internal_error", "An unexpected error occurred; it has been logged.")


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Turn an unreachable store into a 503 ``store_unavailable`` with ``Retry-After``."""
    try:
        yield
    except StoreUnavailable as exc:
        raise ApiError(
            503,
            "store_unavailable",
            "The store cannot be reached right now; retry shortly.",
            headers={"Retry-After": "5"},
        ) from exc


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _header_safe(text: str) -> str:
    # Header values must be one line of visible ASCII; messages may quote user input.
    cleaned = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    return cleaned[:512]


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    err_code: str | None = None,
    extra: Mapping[str, Any] | None = None,
    body_extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The standard error answer (see the module docstring)."""
    body, all_headers = error_parts(
        code, message, err_code=err_code, extra=extra, body_extra=body_extra, headers=headers
    )
    response = web.Response(
        body=body, status=status, headers=all_headers, content_type="application/json"
    )
    response[ERROR_CODE] = code
    return response


def error_parts(
    code: str,
    message: str,
    *,
    err_code: str | None = None,
    extra: Mapping[str, Any] | None = None,
    body_extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the headers (but Content-Type) of the standard error answer."""
    error_id = str(uuid.uuid4())
    error: dict[str, Any] = {"code": code, "message": message, "errorID": error_id}
    if err_code is not None:
        error["errCode"] = err_code
    if extra:
        error.update(extra)
    body: dict[str, Any] = {"error": error}
    if body_extra:
        body.update(body_extra)
    all_headers = {"x-error": _header_safe(message), "x-error-id": error_id}
    if headers:
        all_headers.update(headers)
    return orjson.dumps(body), all_headers
