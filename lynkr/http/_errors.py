"""Every failure as Anthropic's error JSON: `{"type":"error","error":{"type":…,"message":…}}`.

`LynkrError`s carry their own status and type. Framework errors (werkzeug's
`HTTPException`: unknown path, wrong method, body too large) are mapped by status.
Anything else is a bug: logged with its traceback under the request id, and answered
with a generic 500 `api_error` that leaks nothing.
"""

from __future__ import annotations

import json

import structlog
from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from lynkr.errors import InternalError, LynkrError

__all__ = [
    "BODY_LIMIT",
    "HTTP_ERROR_TYPES",
    "error_json",
    "error_response",
    "lynkr_error_parts",
    "register_error_handlers",
    "retry_after_value",
    "too_large_message",
]

log = structlog.get_logger()

HTTP_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
"""HTTP status → Anthropic error type, for errors raised by the framework."""

BODY_LIMIT = 32 * 1024 * 1024


def error_json(error_type: str, message: str) -> bytes:
    """The body of an Anthropic error."""
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return json.dumps(body).encode()


def retry_after_value(retry_after: float) -> str:
    """The `retry-after` header value: whole seconds, at least 1."""
    return str(max(1, round(retry_after)))


def error_response(status: int, error_type: str, message: str,
                   retry_after: float | None = None) -> Response:
    """An Anthropic error response."""
    response = Response(error_json(error_type, message), status=status,
                        content_type="application/json")
    if retry_after is not None:
        response.headers["retry-after"] = retry_after_value(retry_after)
    return response


def lynkr_error_parts(exc: LynkrError) -> tuple[int, str, str, float | None]:
    """(status, error type, message, retry-after) the client gets for `exc`.

    An `InternalError` is logged and answered with a generic 500 that leaks nothing.
    """
    if isinstance(exc, InternalError):
        log.error("internal_error", error=exc.message)
        return 500, "api_error", "internal error", None
    return exc.status, exc.error_type, exc.message, exc.retry_after


def too_large_message() -> str:
    """The 413 message."""
    return f"request body is larger than the {BODY_LIMIT // (1024 * 1024)} MB limit"


async def _lynkr_error(exc: LynkrError) -> Response:
    return error_response(*lynkr_error_parts(exc))


async def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = too_large_message() if status == 413 else exc.description or exc.name
    return error_response(status, HTTP_ERROR_TYPES.get(status, "api_error"), message)


async def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return error_response(500, "api_error", "internal error")


def register_error_handlers(app: Quart) -> None:
    """Install the handlers on `app`."""
    app.register_error_handler(LynkrError, _lynkr_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
