"""One turn end to end: session resolution, routing, upstream call, shaping, recording.

`_session` resolves the session id, `_route` decides backend and model, `_call` does
the upstream I/O with retries before the first byte and the circuit breaker,
`_shape` builds the events and frames that end a turn, `_record` talks to the
session actors, `_cache` is the prompt cache, and `_turn` runs the whole turn. With
server tools on, `_loop` runs the agent loop inside the turn (`_server_tools` decides the
tools offered, `_history` puts hidden steps back into a resent history, `_loop_frames`
keeps the client's one message).
"""

from __future__ import annotations

from lynkr.orchestrator._cache import (
    CacheProbe,
    CacheStatistics,
    PromptCache,
    cache_frames,
    request_key,
)
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
from lynkr.orchestrator._history import LoopHistory, interrupted_text
from lynkr.orchestrator._loop import AgentLoop, LoopPlan, step_limit_text
from lynkr.orchestrator._loop_frames import LoopFrames
from lynkr.orchestrator._record import (
    RECORDED_HEADERS,
    RecordingError,
    SessionRecorder,
    TurnTicket,
    turn_request,
)
from lynkr.orchestrator._route import Route, choose_route
from lynkr.orchestrator._server_tools import GROUPS, ServerTools, ServerToolSettings
from lynkr.orchestrator._session import SessionRef, resolve_session
from lynkr.orchestrator._shape import aborted, error_frame, failed, responded, usage_of
from lynkr.orchestrator._turn import MessagesRequest, Orchestrator, TurnInfo, TurnResult

__all__ = [
    "GROUPS",
    "HTTPX_ERRORS",
    "RECORDED_HEADERS",
    "AgentLoop",
    "CacheProbe",
    "CacheStatistics",
    "CallStats",
    "LoopFrames",
    "LoopHistory",
    "LoopPlan",
    "MessagesRequest",
    "OpenedStream",
    "Orchestrator",
    "PromptCache",
    "ProviderHandle",
    "RecordingError",
    "Route",
    "ServerToolSettings",
    "ServerTools",
    "SessionRecorder",
    "SessionRef",
    "TurnInfo",
    "TurnResult",
    "TurnTicket",
    "aborted",
    "backoff_delay",
    "cache_frames",
    "choose_route",
    "error_frame",
    "failed",
    "fetch_body",
    "interrupted_text",
    "map_httpx_errors",
    "open_stream",
    "request_key",
    "resolve_session",
    "responded",
    "step_limit_text",
    "turn_request",
    "usage_of",
]
