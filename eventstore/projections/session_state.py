"""The state of one session, as a pure fold of its `session-<id>` stream.

(Just over 400 lines: one fold over every session event type; `_turns.py` holds the
turn list.)

`evolve_session(state, recorded)` applies one recorded event; `fold_session(records,
start=None)` applies many. Folding a prefix and then the tail from that state gives
the same state as folding everything (the session actor relies on it to catch up
after another process appended). No I/O, no clock: times come from the records.

An event that does not fit the state raises `SessionFoldError` naming the stream,
the sequence number and why, e.g. a `ModelResponded` for a turn that never started
or a `TurnStarted` after the turn it names was already begun. `SessionFoldError`
is an `EventStoreError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeVar, cast

from eventstore._codec import BlobRef
from eventstore._errors import EventStoreError
from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events import session as session_events
from eventstore.events.session import (
    LoopStepResponded,
    ModelResponded,
    PolicyDecided,
    RouteChosen,
    SessionLoopStopped,
    SessionStarted,
    StreamAborted,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections._turns import Turns

__all__ = [
    "SessionFoldError",
    "SessionState",
    "ToolCallState",
    "ToolCallStatus",
    "TurnState",
    "TurnStatus",
    "Turns",
    "evolve_session",
    "fold_session",
]

_T = TypeVar("_T")
TurnStatus = Literal["open", "responded", "failed", "aborted"]
ToolCallStatus = Literal["started", "completed", "interrupted"]
_EMPTY: Mapping[str, int] = MappingProxyType({})
_NO_TURNS: Turns[Any] = Turns()


class SessionFoldError(EventStoreError):
    """A session stream holds an event that does not fit the state before it."""

    def __init__(self, stream_id: str, seq: int, reason: str) -> None:
        super().__init__(f"{stream_id} seq {seq}: {reason}")
        self.stream_id = stream_id
        self.seq = seq
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallState:
    """One server tool call of a turn, as its events left it.

    "started" with no end means the call was in flight when the process died (recovery
    closes it); a call refused before it ran (a deny, a bad input) is "completed" with
    ``ok=False`` and was never "started".
    """

    tool_call_id: str | None
    tool: str
    status: ToolCallStatus
    ok: bool | None = None  # completed: the result's ok
    result: BlobRef | None = None  # completed: what the caller got
    effects_possible: bool = False  # started/interrupted: the tool may have changed things
    reason: str | None = None  # interrupted: why


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnState:
    """One turn of a session: the request, its route, its tools and how it ended."""

    number: int
    request_id: str
    model: str  # as the client asked
    stream: bool
    started_at: float
    status: TurnStatus = "open"
    finished_at: float | None = None
    provider: str | None = None
    backend_model: str | None = None
    stop_reason: str | None = None
    error: str | None = None  # error type (failed) or reason (aborted)
    usage: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    policy_decisions: int = 0
    denials: int = 0
    tool_results: int = 0
    request_digest: str | None = None  # what the client sent (TurnStarted v2)
    answer_digest: str | None = None  # what it got (ModelResponded v2)
    visible_blocks: int | None = None  # 0: an empty answer; None: not known
    tool_calls: tuple[ToolCallState, ...] = ()  # server tool calls, in start order
    steps: tuple[BlobRef, ...] = ()  # LoopStepResponded messages, in order
    last_message: BlobRef | None = None  # the request's last message (the agent loop's anchor)

    @property
    def is_open(self) -> bool:
        """True until the turn got its answer, failed or was aborted."""
        return self.status == "open"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for `lynkr replay --json`)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionState:
    """Everything known about a session after folding its stream up to `version`."""

    session_id: str
    stream_id: str
    source: str
    client: str | None
    version: int  # sequence number of the last event folded
    event_count: int
    last_position: int
    started_at: float
    last_activity: float
    turns: Turns[TurnState] = field(default_factory=lambda: _NO_TURNS)  # turn n is turns[n - 1]
    model: str | None = None  # the model the latest turn asked for
    provider: str | None = None  # the latest route
    backend_model: str | None = None
    usage: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # summed over responded turns
    policy_decisions: int = 0
    denials: int = 0
    tool_results: int = 0
    loop_stops: int = 0  # SessionLoopStopped events
    loop_checked_after: int = 0  # the loop guard looks only at turns after this one
    last_loop_stop: SessionLoopStopped | None = None  # the latest stop
    last_loop_stop_at: float = 0.0  # when it was recorded

    def turn(self, number: int) -> TurnState:
        """Turn `number` (1-based).

        Raises:
            KeyError: the session has no such turn.
        """
        if not 1 <= number <= len(self.turns):
            raise KeyError(f"session {self.session_id} has no turn {number}")
        return self.turns[number - 1]

    @property
    def next_turn(self) -> int:
        """The number the next `TurnStarted` must carry."""
        return len(self.turns) + 1

    @property
    def open_turns(self) -> tuple[int, ...]:
        """Numbers of the turns still waiting for their outcome."""
        return tuple(t.number for t in self.turns if t.is_open)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for `lynkr replay --json`); turns become a list of dicts."""
        data = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        data["turns"] = [t.as_dict() for t in self.turns]
        return data


def fold_session(
    records: Iterable[Recorded[Event]], start: SessionState | None = None
) -> SessionState | None:
    """Fold recorded events onto `start` (None: an empty stream).

    Returns:
        The state after the last record, or `start` if there were none.

    Raises:
        SessionFoldError: a record does not fit the state before it.
    """
    state = start
    for recorded in records:
        state = evolve_session(state, recorded)
    return state


def evolve_session(state: SessionState | None, recorded: Recorded[Event]) -> SessionState:
    """Apply one recorded event to the session state.

    Raises:
        SessionFoldError: the event does not fit (see module docstring).
    """
    event = recorded.event
    if state is None:
        if not isinstance(event, SessionStarted):
            _reject(recorded, f"stream starts with {type(event).type_name}, not SessionStarted")
        if recorded.seq != 1:
            _reject(recorded, "the first event of a stream must have seq 1")
        return SessionState(
            session_id=event.session_id, stream_id=recorded.stream_id, source=event.source,
            client=event.client, version=1, event_count=1, last_position=recorded.position,
            started_at=recorded.recorded_at, last_activity=recorded.recorded_at,
        )
    if recorded.seq != state.version + 1:
        _reject(recorded, f"expected seq {state.version + 1} after version {state.version}")
    changes = _changes(state, recorded)
    return _replace_session(
        state, version=recorded.seq, event_count=state.event_count + 1,
        last_position=recorded.position, last_activity=recorded.recorded_at, **changes,
    )


def _changes(state: SessionState, recorded: Recorded[Event]) -> dict[str, Any]:
    """The fields one event changes (besides version, counts and times)."""
    event = recorded.event
    match event:
        case SessionStarted():
            _reject(recorded, "SessionStarted in a session that already started")
        case TurnStarted():
            if event.turn != state.next_turn:
                _reject(recorded, f"TurnStarted for turn {event.turn}, expected {state.next_turn}")
            turn = TurnState(number=event.turn, request_id=event.request_id, model=event.model,
                             stream=event.stream, started_at=recorded.recorded_at,
                             request_digest=event.request_digest,
                             last_message=event.messages[-1] if event.messages else None)
            return {"turns": state.turns.appended(turn), "model": event.model}
        case RouteChosen():
            turn = _replace_turn(_open_turn(state, recorded, event.turn),
                                       provider=event.provider, backend_model=event.backend_model)
            return {"turns": _put(state, turn), "provider": event.provider,
                    "backend_model": event.backend_model}
        case PolicyDecided() | ToolCompleted():
            return _tool_changes(state, recorded, event)
        case ToolCallStarted() | ToolCallInterrupted():
            if event.turn is None:  # a call outside any turn (CLI, admin)
                return {}
            turn = _open_turn(state, recorded, event.turn)
            return {"turns": _put(state, _with_call(turn, event))}
        case LoopStepResponded():
            turn = _open_turn(state, recorded, event.turn)
            return {"turns": _put(state, _replace_turn(turn, steps=(*turn.steps, event.message)))}
        case ModelResponded() | UpstreamFailed() | StreamAborted():
            return _outcome_changes(state, recorded, event)
        case SessionLoopStopped():
            return {"loop_stops": state.loop_stops + 1, "loop_checked_after": len(state.turns),
                    "last_loop_stop": event, "last_loop_stop_at": recorded.recorded_at}
    if type(event).__module__ != session_events.__name__:
        _reject(recorded, f"{type(event).type_name} does not belong in a session stream")
    # A session event this fold does not track yet: it still counts as activity,
    # but if it names a turn, that turn must exist.
    number = getattr(event, "turn", None)
    if isinstance(number, int):
        _known_turn(state, recorded, number)
    return {}


def _tool_changes(
    state: SessionState, recorded: Recorded[Event], event: PolicyDecided | ToolCompleted
) -> dict[str, object]:
    if isinstance(event, PolicyDecided):
        denied = int(event.decision == "deny")
        changes: dict[str, object] = {"policy_decisions": state.policy_decisions + 1,
                                      "denials": state.denials + denied}
        bump = {"policy_decisions": 1, "denials": denied}
    else:
        changes = {"tool_results": state.tool_results + 1}
        bump = {"tool_results": 1}
    if event.turn is not None:
        turn = _open_turn(state, recorded, event.turn)
        turn = _replace_turn(turn, **{k: getattr(turn, k) + v for k, v in bump.items()})
        if isinstance(event, ToolCompleted):
            turn = _with_call(turn, event)
        changes["turns"] = _put(state, turn)
    return changes


def _with_call(
    turn: TurnState, event: ToolCallStarted | ToolCompleted | ToolCallInterrupted
) -> TurnState:
    """`turn` with `event` applied to its tool calls: a start adds one; an end replaces
    the latest started call with the same id (scanning back from the newest, so the
    usual case costs one step), or adds one if none started (a refused call)."""
    calls = turn.tool_calls
    if isinstance(event, ToolCallStarted):
        call = ToolCallState(tool_call_id=event.tool_call_id, tool=event.tool,
                             status="started", effects_possible=event.effects)
        return _replace_turn(turn, tool_calls=(*calls, call))
    for index in range(len(calls) - 1, -1, -1):
        found = calls[index]
        if found.status == "started" and found.tool_call_id == event.tool_call_id:
            ended = _ended_call(found, event)
            return _replace_turn(turn, tool_calls=(*calls[:index], ended, *calls[index + 1:]))
    fresh = ToolCallState(tool_call_id=event.tool_call_id, tool=event.tool, status="started")
    return _replace_turn(turn, tool_calls=(*calls, _ended_call(fresh, event)))


def _ended_call(call: ToolCallState, event: ToolCompleted | ToolCallInterrupted) -> ToolCallState:
    if isinstance(event, ToolCompleted):
        return dataclasses.replace(call, status="completed", ok=event.ok, result=event.result)
    return dataclasses.replace(call, status="interrupted", reason=event.reason,
                               effects_possible=event.effects_possible)


def _outcome_changes(
    state: SessionState,
    recorded: Recorded[Event],
    event: ModelResponded | UpstreamFailed | StreamAborted,
) -> dict[str, object]:
    turn = _open_turn(state, recorded, event.turn)
    at = recorded.recorded_at
    match event:
        case ModelResponded():
            usage = _int_usage(event.usage)
            turn = _replace_turn(turn, status="responded", finished_at=at,
                                 stop_reason=event.stop_reason, usage=usage,
                                 answer_digest=event.answer_digest,
                                 visible_blocks=event.visible_blocks)
            return {"turns": _put(state, turn), "usage": _add_usage(state.usage, usage)}
        case UpstreamFailed():
            turn = _replace_turn(turn, status="failed", finished_at=at,
                                       error=event.error_type)
        case StreamAborted():
            turn = _replace_turn(turn, status="aborted", finished_at=at,
                                       error=event.reason)
    return {"turns": _put(state, turn)}


def _known_turn(state: SessionState, recorded: Recorded[Event], number: int) -> TurnState:
    if not 1 <= number <= len(state.turns):
        _reject(recorded, f"{recorded.type_name} for turn {number}, which never started")
    return state.turns[number - 1]


def _open_turn(state: SessionState, recorded: Recorded[Event], number: int) -> TurnState:
    turn = _known_turn(state, recorded, number)
    if not turn.is_open:
        _reject(recorded, f"{recorded.type_name} for turn {number}, which is already {turn.status}")
    return turn


def _replacer(cls: type[_T]) -> Callable[..., _T]:
    """`dataclasses.replace` for one frozen slots dataclass without `__post_init__`,
    generated once: it copies the slots straight through their descriptors. The
    stock `replace` walks `fields()` and re-runs `__init__` on every call, and the
    session actor folds every committed event with two of them (it was the largest
    item of the actor's own work)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    lines = ["def replace(obj, /, *, " + ", ".join(f"{n}=unset" for n in names) + "):",
             "    new = new_(cls)"]
    lines += [f"    set_{n}(new, obj.{n} if {n} is unset else {n})" for n in names]
    lines.append("    return new")
    scope: dict[str, Any] = {"new_": object.__new__, "cls": cls, "unset": object()}
    scope.update({f"set_{name}": cls.__dict__[name].__set__ for name in names})
    exec("\n".join(lines), scope)  # generated from the class's own field names
    return cast("Callable[..., _T]", scope["replace"])


_replace_turn = _replacer(TurnState)
_replace_session = _replacer(SessionState)


def _put(state: SessionState, turn: TurnState) -> Turns[TurnState]:
    return state.turns.replaced(turn.number - 1, turn)


def _int_usage(usage: Mapping[str, object]) -> Mapping[str, int]:
    # Anthropic usage also carries strings and nested maps (service_tier,
    # cache_creation); only the integer counters add up.
    return MappingProxyType({k: v for k, v in usage.items()
                             if isinstance(v, int) and not isinstance(v, bool)})


def _add_usage(total: Mapping[str, int], usage: Mapping[str, int]) -> Mapping[str, int]:
    summed = dict(total)
    for key, value in usage.items():
        summed[key] = summed.get(key, 0) + value
    return MappingProxyType(summed)


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, ToolCallState):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BlobRef):
        return value.hex
    return value


def _reject(recorded: Recorded[Event], reason: str) -> NoReturn:
    raise SessionFoldError(recorded.stream_id, recorded.seq, reason)
