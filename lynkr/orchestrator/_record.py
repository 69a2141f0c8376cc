"""Recording a turn through the session actors.

`SessionRecorder` is the orchestrator's one door to the session side (`actors.Sessions`):
begin a turn (the session actor stores system blocks, the tool list and each message
as content-addressed blobs, so the ~100 KB Claude Code resends every turn is stored
once) together with the routing decision, and finish the turn with its outcome. Every call
returns after the commit. Actor and store failures are mapped to `LynkrError`s here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from actors import (
    ActorError,
    InvalidSessionIdError,
    LoopGuard,
    SessionLoopStoppedError,
    Sessions,
    TurnRequest,
)
from eventstore import BlobRef, Event, EventStoreError
from lynkr.errors import InvalidRequestError, LynkrError
from lynkr.orchestrator._route import Route
from lynkr.orchestrator._session import SessionRef

__all__ = [
    "RECORDED_HEADERS",
    "LoopStoppedError",
    "RecordingError",
    "SessionRecorder",
    "TurnTicket",
    "turn_request",
]

RECORDED_HEADERS = ("anthropic-version", "anthropic-beta", "user-agent", "x-app")
"""Request headers kept with a turn (never auth headers)."""

_BODY_PARTS = frozenset({"system", "tools", "messages", "model", "stream"})
T = TypeVar("T")
Blobs = Sequence[tuple[BlobRef, bytes]]


class LoopStoppedError(InvalidRequestError):
    """The loop guard refused the request (400: Claude Code shows it and does not retry)."""


class RecordingError(LynkrError):
    """The event log could not record the turn, so it was not served."""

    status = 503
    error_type = "api_error"


@dataclass(frozen=True, slots=True)
class TurnTicket:
    """A begun turn: its session and number, to finish it with."""

    session: SessionRef
    turn: int
    request_id: str


def turn_request(request_id: str, body: Mapping[str, Any], headers: Mapping[str, str],
                 request_bytes: int, session: SessionRef,
                 loop_guard: LoopGuard | None = None, key_id: str | None = None) -> TurnRequest:
    """The session command's input for one `/v1/messages` body (`loop_guard`: the limits
    the session checks before it starts the turn; `key_id`: the caller's key, recorded in
    the turn's `Metadata`)."""
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    return TurnRequest(
        request_id=request_id, model=str(body.get("model", "")), stream=bool(body.get("stream")),
        system=list(system or ()), tools=body.get("tools"), messages=body.get("messages") or (),
        params={k: v for k, v in body.items() if k not in _BODY_PARTS},
        headers={n: headers[n] for n in RECORDED_HEADERS if n in headers},
        request_bytes=request_bytes, source=session.source, client=headers.get("user-agent"),
        loop_guard=loop_guard, received_at=time.time(), key_id=key_id)


async def _mapped(call: Awaitable[T]) -> T:
    try:
        return await call
    except InvalidSessionIdError as exc:
        raise InvalidRequestError(f"session id: {exc}") from exc
    except SessionLoopStoppedError as exc:
        raise LoopStoppedError(str(exc)) from exc
    except (ActorError, EventStoreError) as exc:
        raise RecordingError(f"the event log is unavailable: {type(exc).__name__}") from exc


class SessionRecorder:
    """Begin, route and finish turns on the session actors (see module docstring)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def begin(self, request: TurnRequest, session: SessionRef, route: Route) -> TurnTicket:
        """Append `TurnStarted` (and `SessionStarted` for a new session) and `RouteChosen`,
        in one commit."""
        routed = dataclasses.replace(request, provider=route.provider,
                                     backend_model=route.backend_model,
                                     route_reason=route.reason)
        turn = await _mapped(self.sessions.begin_turn(session.session_id, routed))
        return TurnTicket(session, turn, request.request_id)

    async def record(self, ticket: TurnTicket, *events: Event, blobs: Blobs = ()) -> None:
        """Append events of the open turn (agent-loop steps, tool calls, cache events)."""
        await _mapped(self.sessions.record(ticket.session.session_id, ticket.turn, *events,
                                           blobs=blobs))

    async def finish(self, ticket: TurnTicket, outcome: Event, blobs: Blobs = ()) -> None:
        """Append the turn's outcome (`ModelResponded`, `UpstreamFailed`, `StreamAborted`)."""
        await _mapped(self.sessions.finish_turn(ticket.session.session_id, ticket.turn, outcome,
                                                blobs=blobs))
