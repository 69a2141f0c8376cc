"""Session commands: pure functions that validate against a `SessionState` and return events.

Each command takes the current state (None for a session with no events yet) and
returns a `Decision`: the events to append and the blobs they refer to. Nothing
here does I/O or reads a clock, so the commands are tested without actors; the
`SessionActor` appends the decision and folds the committed events.
A command that does not fit the state raises `CommandRejectedError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actors._errors import CommandRejectedError
from actors._loop_guard import LoopGuard, loop_verdict
from eventstore import BlobRef, Event, decode_value, encode_value, make_blob
from eventstore.events.session import (
    CacheEvicted,
    CacheHit,
    CacheStored,
    LoopStepResponded,
    ModelResponded,
    PolicyDecided,
    RouteChosen,
    SessionStarted,
    StreamAborted,
    ToolCallInterrupted,
    ToolCallQueued,
    ToolCallStarted,
    ToolCompleted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections.session_state import SessionState, TurnState

__all__ = [
    "Decision",
    "TurnRequest",
    "begin_turn",
    "finish_turn",
    "record_events",
    "request_digest",
]

Blob = tuple[BlobRef, bytes]
_RECORDABLE = (RouteChosen, PolicyDecided, ToolCallStarted, ToolCompleted, ToolCallInterrupted,
               ToolCallQueued, LoopStepResponded, CacheHit, CacheStored, CacheEvicted)
_Recordable = (RouteChosen | PolicyDecided | ToolCallStarted | ToolCompleted | ToolCallInterrupted
               | ToolCallQueued | LoopStepResponded | CacheHit | CacheStored | CacheEvicted)
_OUTCOMES = (ModelResponded, UpstreamFailed, StreamAborted)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRequest:
    """What the HTTP handler knows about an accepted request, before any blob is made.

    `system`, `tools` and `messages` are the JSON values of the request body;
    the session actor turns them into content-addressed blobs on its own thread.
    `source` and `client` are used only for the `SessionStarted` of a new session.
    """

    request_id: str
    model: str
    stream: bool
    system: Sequence[Any] = ()  # one item per system block (a string prompt is one block)
    tools: Sequence[Any] | None = None  # the tool list as sent
    messages: Sequence[Any] = ()
    params: Mapping[str, Any] | None = None  # the rest of the body (max_tokens, thinking…)
    headers: Mapping[str, str] | None = None  # anthropic-version/-beta, user-agent; no secrets
    request_bytes: int = 0
    source: str = "generated"  # where the session id came from: header, metadata, generated
    client: str | None = None
    provider: str | None = None  # with `backend_model`: the routing decision, if already made
    backend_model: str | None = None
    route_reason: str = ""
    loop_guard: LoopGuard | None = None  # None: no loop guard
    received_at: float = 0.0  # epoch seconds: the loop guard's "now" (commands read no clock)
    key_id: str | None = None  # the gateway key's public id: TurnStarted's Metadata.key_id


@dataclass(frozen=True, slots=True)
class Decision:
    """A command's result: events to append, in order, and the blobs they refer to."""

    events: tuple[Event, ...]
    blobs: tuple[Blob, ...] = ()


def begin_turn(
    state: SessionState | None,
    session_id: str,
    request: TurnRequest,
    *,
    blob: Callable[[Any], Blob] = make_blob,
) -> Decision:
    """Start the next turn; a session's first turn also starts the session.

    `blob` makes each part's blob: `make_blob`, or a session's `BlobCache.make`, which
    answers `(ref, b"")` for a part the session has stored already.

    Returns:
        `[SessionStarted,] TurnStarted [, RouteChosen]` with one blob per system block
        and message, and one for the tool list. `RouteChosen` is there when the request
        carries its routing decision (`provider` and `backend_model`), so the turn and
        its route are one commit. Or, when the request's `loop_guard` finds the session
        in a loop (`actors._loop_guard`), `SessionLoopStopped` alone: no turn starts.

    Raises:
        CommandRejectedError: the request is incomplete or holds values that cannot be
            stored (anything but JSON-like data).
    """
    if not request.request_id or not request.model:
        raise CommandRejectedError("a turn needs a request id and a model")
    system = [_blob(blob, block, "system") for block in _blocks(request.system, "system")]
    messages = [_blob(blob, message, "messages")
                for message in _blocks(request.messages, "messages")]
    tools = None
    if request.tools is not None:
        tools = _blob(blob, list(_blocks(request.tools, "tools")), "tools")
    params = _storable(request.params, "params")
    digest = request_digest(request.model, [r for r, _ in system], tools[0] if tools else None,
                            [r for r, _ in messages], params)
    if request.loop_guard is not None:
        stop = loop_verdict(state, request.request_id, digest, request.received_at,
                            request.loop_guard)
        if stop is not None:
            return Decision((stop,))
    turn = TurnStarted(
        turn=state.next_turn if state is not None else 1, request_id=request.request_id,
        model=request.model, stream=request.stream,
        system=tuple(ref for ref, _ in system), tools=tools[0] if tools else None,
        messages=tuple(ref for ref, _ in messages),
        params=params, headers=_storable(request.headers, "headers"),
        request_bytes=request.request_bytes, request_digest=digest,
    )
    events: list[Event] = [turn]
    if request.provider is not None:
        if not request.backend_model:
            raise CommandRejectedError("a routed turn needs a backend model")
        events.append(RouteChosen(turn=turn.turn, provider=request.provider,
                                  backend_model=request.backend_model,
                                  reason=request.route_reason))
    if state is None:
        events.insert(0, SessionStarted(session_id=session_id, source=request.source,
                                        client=request.client))
    blobs = [*system, *messages, *([tools] if tools else [])]
    return Decision(tuple(events), _unique(blobs))


def request_digest(model: str, system: Sequence[BlobRef], tools: BlobRef | None,
                   messages: Sequence[BlobRef], params: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of what decides an answer, from the parts' blob digests: two
    requests with the same digest sent the same model, system, tools, messages and
    parameters."""
    h = hashlib.sha256(model.encode())
    for label, refs in ((b"s", system), (b"m", messages)):
        h.update(label + len(refs).to_bytes(4, "big"))
        for ref in refs:
            h.update(ref.digest)
    h.update(b"t" + (tools.digest if tools is not None else b""))
    h.update(b"p" + encode_value(dict(params or {})))
    return h.hexdigest()


def record_events(
    state: SessionState | None, turn: int, events: Sequence[Event], blobs: Sequence[Blob] = ()
) -> Decision:
    """Record what happened within an open turn: routing, policy decisions, tool calls,
    agent-loop steps and prompt-cache events (`_RECORDABLE`).

    Events whose `turn` is None are given `turn`.

    Raises:
        CommandRejectedError: no events, an event of another kind, an event naming
            another turn, or a turn that does not exist or already ended.
    """
    if not events:
        raise CommandRejectedError("record needs at least one event")
    _require_open(state, turn)
    placed = []
    for event in events:
        if not isinstance(event, _RECORDABLE):
            raise CommandRejectedError(
                f"record takes {', '.join(c.__name__ for c in _RECORDABLE)}, "
                f"not {type(event).__name__}")
        placed.append(_for_turn(event, turn))
    return Decision(tuple(placed), _unique(blobs))


def finish_turn(
    state: SessionState | None, turn: int, outcome: Event, blobs: Sequence[Blob] = ()
) -> Decision:
    """End an open turn with its answer or its failure.

    Raises:
        CommandRejectedError: `outcome` is not `ModelResponded`, `UpstreamFailed` or
            `StreamAborted`, names another turn, or the turn does not exist or ended.
    """
    if not isinstance(outcome, _OUTCOMES):
        raise CommandRejectedError(
            f"finish_turn takes ModelResponded, UpstreamFailed or StreamAborted, "
            f"not {type(outcome).__name__}")
    _require_open(state, turn)
    if outcome.turn != turn:
        raise CommandRejectedError(
            f"{type(outcome).__name__} names turn {outcome.turn}, not {turn}")
    return Decision((outcome,), _unique(blobs))


def _require_open(state: SessionState | None, turn: int) -> TurnState:
    if state is None:
        raise CommandRejectedError(f"turn {turn} does not exist: the session has no turns")
    try:
        found = state.turn(turn)
    except KeyError:
        raise CommandRejectedError(f"turn {turn} does not exist in session "
                                   f"{state.session_id}") from None
    if not found.is_open:
        raise CommandRejectedError(f"turn {turn} of session {state.session_id} "
                                   f"already ended ({found.status})")
    return found


def _for_turn(event: _Recordable, turn: int) -> Event:
    if event.turn is None:
        return dataclasses.replace(event, turn=turn)
    if event.turn != turn:
        raise CommandRejectedError(f"{type(event).__name__} names turn {event.turn}, not {turn}")
    return event


def _blocks(value: Sequence[Any], name: str) -> Sequence[Any]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping) or not isinstance(value, Sequence):
        raise CommandRejectedError(f"{name} must be a list, not {type(value).__name__}")
    return value


def _blob(make: Callable[[Any], Blob], value: Any, name: str) -> Blob:
    try:
        return make(value)
    except (TypeError, ValueError) as exc:
        raise CommandRejectedError(f"{name} cannot be stored: {exc}") from exc


def _storable(value: Mapping[str, Any] | None, name: str) -> dict[str, Any] | None:
    """Round-trip through the codec: rejects what cannot be stored, and gives the value
    the shape it will have when read back (arrays become tuples)."""
    if value is None:
        return None
    try:
        return dict(decode_value(encode_value(dict(value))))
    except (TypeError, ValueError) as exc:
        raise CommandRejectedError(f"{name} cannot be stored: {exc}") from exc


def _unique(blobs: Sequence[Blob]) -> tuple[Blob, ...]:
    seen: dict[bytes, Blob] = {}
    for ref, data in blobs:
        seen.setdefault(ref.digest, (ref, data))
    return tuple(seen.values())
