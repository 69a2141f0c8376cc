"""One turn end to end: session resolution, routing, upstream call, shaping, recording.

`_session` resolves the session id, `_route` decides backend and model, `_call` does
the upstream I/O with retries before the first byte and the circuit breaker,
`_shape` builds the events and frames that end a turn, `_record` talks to the
session actors, and `_turn` runs the whole turn.
"""

from __future__ import annotations

from lynkr.orchestrator._call import (
    HTTPX_ERRORS,
    CallStats,
    OpenedStream,
    ProviderHandle,
    backoff_delay,
    fetch_body,
    map_httpx_errors,
    open_stream,
)
from lynkr.orchestrator._record import (
    RECORDED_HEADERS,
    RecordingError,
    SessionRecorder,
    TurnTicket,
    turn_request,
)
from lynkr.orchestrator._route import Route, choose_route
from lynkr.orchestrator._session import SessionRef, resolve_session
from lynkr.orchestrator._shape import aborted, error_frame, failed, responded, usage_of
from lynkr.orchestrator._turn import MessagesRequest, Orchestrator, TurnInfo, TurnResult

__all__ = [
    "HTTPX_ERRORS",
    "RECORDED_HEADERS",
    "CallStats",
    "MessagesRequest",
    "OpenedStream",
    "Orchestrator",
    "ProviderHandle",
    "RecordingError",
    "Route",
    "SessionRecorder",
    "SessionRef",
    "TurnInfo",
    "TurnResult",
    "TurnTicket",
    "aborted",
    "backoff_delay",
    "choose_route",
    "error_frame",
    "failed",
    "fetch_body",
    "map_httpx_errors",
    "open_stream",
    "resolve_session",
    "responded",
    "turn_request",
    "usage_of",
]
