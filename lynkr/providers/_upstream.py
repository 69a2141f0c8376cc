"""What every backend adapter shares: the request it builds, and the upstream error table.

An adapter (`_openai.py`, `_databricks.py`, `_anthropic.py`) is pure: it turns an
Anthropic request into an `UpstreamRequest`, an upstream body into an Anthropic
message, an upstream byte stream into Anthropic SSE frames (through a
`StreamRelay`), and an upstream error answer into a `LynkrError`. The orchestrator
does the I/O.

Status table (`map_status`):

| upstream | client gets |
|---|---|
| 400, 422 | 400 `invalid_request_error` with the upstream's message |
| 401 | 502 `api_error` (our credential for the backend is wrong, not the client's) |
| 403 | 502 `api_error` |
| 404 | 502 `api_error` (endpoint or model not found upstream) |
| 408 | 504 `timeout_error` |
| 413 | 413 `request_too_large` |
| 429 | 429 `rate_limit_error`, `retry-after` passed on |
| 503, 529 | 529 `overloaded_error` |
| other 5xx | 502 `api_error` |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lynkr.errors import LynkrError, UpstreamStatusError
from lynkr.providers._parts import UnknownParts
from lynkr.providers._wire import StreamOutcome

__all__ = [
    "RETRYABLE_STATUSES",
    "Adapter",
    "StreamRelay",
    "UpstreamRequest",
    "error_message_from_body",
    "map_status",
    "parse_retry_after",
]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
"""Upstream statuses worth another attempt (before any byte reached the client)."""

_STATUS_MAP: dict[int, tuple[int, str]] = {
    400: (400, "invalid_request_error"),
    422: (400, "invalid_request_error"),
    401: (502, "api_error"),
    403: (502, "api_error"),
    404: (502, "api_error"),
    408: (504, "timeout_error"),
    413: (413, "request_too_large"),
    429: (429, "rate_limit_error"),
    503: (529, "overloaded_error"),
    529: (529, "overloaded_error"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamRequest:
    """One HTTP request to a backend (the body already encoded)."""

    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    stream: bool
    backend_model: str


class StreamRelay(Protocol):
    """Turns an upstream byte stream into Anthropic SSE bytes and assembles the message.

    Implemented by `OpenAIStreamTranslator`, and by `AnthropicRelay` over
    `AnthropicStreamAssembler`. A failure is not raised: it is an SSE `error` frame in
    the output, and `outcome.complete` is False. `message_stop` is held back in
    `stop_frame` so the caller can commit the turn before sending it.
    """

    @property
    def done(self) -> bool:
        """True once the stream completed or failed."""

    @property
    def outcome(self) -> StreamOutcome | None:
        """How the stream ended (None while it runs)."""

    @property
    def raw(self) -> bytes:
        """Every upstream byte fed so far."""

    @property
    def stop_frame(self) -> bytes:
        """The held-back `message_stop` frame."""

    @property
    def unknown(self) -> UnknownParts:
        """Upstream parts and fields that could not be translated (so far)."""

    def feed(self, data: bytes) -> bytes:
        """Consume upstream bytes; the SSE bytes to send now."""

    def end(self) -> bytes:
        """The upstream body ended; the last SSE bytes (an error frame if incomplete)."""


class Adapter(Protocol):
    """A backend's pure request/response shaping (see module docstring)."""

    name: str

    def build(
        self, body: Mapping[str, Any], backend_model: str, headers: Mapping[str, str]
    ) -> UpstreamRequest:
        """The upstream request for an Anthropic `body` (client `headers` for betas)."""

    def parse(self, data: bytes, request: Mapping[str, Any],
              unknown: UnknownParts | None = None) -> dict[str, Any]:
        """An upstream non-streaming body as the Anthropic message answering `request`;
        parts that could not be translated are noted in `unknown`.

        Raises:
            UpstreamError: the body is not a valid answer.
        """

    def relay(self, request: Mapping[str, Any]) -> StreamRelay:
        """A fresh stream relay for one streaming call answering `request`."""

    def error(self, status: int, data: bytes, headers: Mapping[str, str]) -> LynkrError:
        """An upstream error answer as a `LynkrError`."""


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a `retry-after` header (or `retry-after-ms`), if there is a usable one."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: rare upstream, and the client retries anyway


def error_message_from_body(data: bytes) -> str | None:
    """The human message inside an upstream error body, whatever its dialect.

    Understands Anthropic (`error.message`), OpenAI (`error.message` / `error` string)
    and Databricks (`error_code` + `message`) bodies.
    """
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        text = data.decode("utf-8", "replace").strip()
        return text[:500] or None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(body.get("message"), str):
        code = body.get("error_code")
        return f"{code}: {body['message']}" if isinstance(code, str) else str(body["message"])
    return None


def map_status(
    provider: str, status: int, data: bytes, headers: Mapping[str, str]
) -> UpstreamStatusError:
    """The `LynkrError` for an upstream error answer (see the table in the module docstring)."""
    client_status, error_type = _STATUS_MAP.get(status, (502, "api_error"))
    if status not in _STATUS_MAP and status < 500:
        client_status, error_type = 502, "api_error"
    detail = error_message_from_body(data) or f"HTTP {status}"
    if error_type == "invalid_request_error":
        message = detail  # the client must see exactly what the backend rejected
    else:
        message = f"{provider} upstream returned {status}: {detail}"
    return UpstreamStatusError(message, status=client_status, error_type=error_type,
                               upstream_status=status, retry_after=parse_retry_after(headers))
