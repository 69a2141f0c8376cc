"""Lynkr's exception tree. The HTTP layer maps every `LynkrError` to Anthropic's error JSON.

```
LynkrError                              status  Anthropic type
├── ConfigError                         (start-up; exit code 2)
├── StartupError                        (start-up; exit code 2) port or data directory taken
├── InvalidRequestError                  400    invalid_request_error
│   └── RequestTooLargeError             413    request_too_large
├── AuthenticationError                  401    authentication_error
├── PermissionDeniedError                403    permission_error
├── NotFoundError                        404    not_found_error
├── RateLimitedError                     429    rate_limit_error
├── ProviderNotConfiguredError           503    api_error (says which variables to set)
├── UpstreamError                        502    api_error        the backend failed
│   ├── UpstreamStatusError              (mapped from the backend's status)
│   ├── ProviderTimeoutError             504    timeout_error
│   ├── ProviderConnectError             502    api_error
│   │   └── ProviderStaleConnectionError (a reused connection closed unanswered)
│   ├── ProviderOverloadedError          529    overloaded_error (incl. circuit open)
│   └── StreamBrokenError                502    api_error        cut / malformed stream
├── ToolError                            (a tool call failed; returned as is_error)
│   ├── ToolInputError                   the input does not match the tool's schema
│   ├── PolicyDeniedError                a policy rule denied the call
│   └── ToolNotFoundError
├── McpError                             an MCP server failed or is missing
├── IndexerError                         the catalogue cannot be built or read
└── InternalError                        500    api_error        a bug; logged, never leaked
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "IndexerError",
    "InternalError",
    "InvalidRequestError",
    "LynkrError",
    "McpError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyDeniedError",
    "ProviderConnectError",
    "ProviderNotConfiguredError",
    "ProviderOverloadedError",
    "ProviderStaleConnectionError",
    "ProviderTimeoutError",
    "RateLimitedError",
    "RequestTooLargeError",
    "StartupError",
    "StreamBrokenError",
    "ToolError",
    "ToolInputError",
    "ToolNotFoundError",
    "UpstreamError",
    "UpstreamStatusError",
]


class LynkrError(Exception):
    """Root of Lynkr's application errors.

    A subclass names its HTTP status and Anthropic error type in its class statement
    (``class NotFoundError(LynkrError, status=404, error_type="not_found_error")``);
    what it leaves out it inherits.
    """

    status: int = 500
    error_type: str = "api_error"

    def __init_subclass__(cls, *, status: int | None = None, error_type: str | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if error_type is not None:
            cls.error_type = error_type

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def to_body(self) -> dict[str, object]:
        """Anthropic's error JSON for this error."""
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}


class ConfigError(LynkrError):
    """Settings are missing or invalid; `problems` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StartupError(LynkrError):
    """The gateway cannot start: its port is in use or another gateway holds its data
    directory. The message is one line a user can act on."""


class InvalidRequestError(LynkrError, status=400, error_type="invalid_request_error"):
    """The client sent something we cannot accept."""


class RequestTooLargeError(InvalidRequestError, status=413, error_type="request_too_large"):
    """The body is over the size limit."""


class AuthenticationError(LynkrError, status=401, error_type="authentication_error"):
    """No or a wrong credential."""


class PermissionDeniedError(LynkrError, status=403, error_type="permission_error"):
    """A valid credential without the right to do this."""


class NotFoundError(LynkrError, status=404, error_type="not_found_error"):
    """The thing asked for does not exist."""


class RateLimitedError(LynkrError, status=429, error_type="rate_limit_error"):
    """A limit was hit; `retry_after` says when to come back."""


class ProviderNotConfiguredError(LynkrError, status=503):
    """No backend is configured for this request."""


class UpstreamError(LynkrError, status=502):
    """The backend failed (the peer broke, not us)."""


class UpstreamStatusError(UpstreamError):
    """The backend answered with an error status; status and type are mapped from it."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str,
        upstream_status: int,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.error_type = error_type
        self.upstream_status = upstream_status


class ProviderTimeoutError(UpstreamError, status=504, error_type="timeout_error"):
    """The backend did not answer in time."""


class ProviderConnectError(UpstreamError):
    """The backend could not be reached."""


class ProviderStaleConnectionError(ProviderConnectError):
    """The backend closed a reused keep-alive connection before answering (the
    keep-alive race): the request may be sent again at once, as a counted retry."""


class ProviderOverloadedError(UpstreamError, status=529, error_type="overloaded_error"):
    """The backend is overloaded, or its circuit breaker is open."""


class StreamBrokenError(UpstreamError):
    """The upstream stream was cut, malformed, or ended without a finish reason."""


class ToolError(LynkrError, status=400, error_type="invalid_request_error"):
    """A tool call failed; the model sees it as a tool result with is_error."""


class ToolInputError(ToolError):
    """The tool input does not match the tool's JSON schema."""


class PolicyDeniedError(ToolError, status=403, error_type="permission_error"):
    """A policy rule denied the call; the message names the setting that would allow it."""


class ToolNotFoundError(ToolError, status=404, error_type="not_found_error"):
    """No tool is registered under that name."""


class McpError(LynkrError, status=502):
    """An MCP server failed, timed out, or is not attached."""


class IndexerError(LynkrError):
    """The repository catalogue cannot be built or read."""


class InternalError(LynkrError):
    """A bug. The client sees a generic message; the details go to the log."""
