"""The session fold's record of a turn's server tool calls and agent-loop steps."""

from __future__ import annotations

import json

import pytest

from eventstore import BlobRef, Event, Metadata, Recorded
from eventstore.events.session import (
    LoopStepResponded,
    PolicyDecided,
    SessionStarted,
    StreamAborted,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
    TurnStarted,
)
from eventstore.projections.session_state import SessionFoldError, fold_session

STREAM = "session-s1"
STEP_1, STEP_2, RESULT = (BlobRef(bytes([n]) * 32, n) for n in (1, 2, 3))


def recorded(events: list[Event]) -> list[Recorded[Event]]:
    return [Recorded(position=100 + seq, stream_id=STREAM, seq=seq, event=event,
                     recorded_at=1000.0 + seq, metadata=Metadata())
            for seq, event in enumerate(events, start=1)]


def opening() -> list[Event]:
    return [SessionStarted(session_id="s1", source="header"),
            TurnStarted(turn=1, request_id="r1", model="m", stream=True)]


def start(call_id: str, tool: str = "fs_write", effects: bool = True) -> ToolCallStarted:
    return ToolCallStarted(tool=tool, inputs_digest="d", effects=effects,
                           tool_call_id=call_id, turn=1, caller="session")


def step(n: int, message: BlobRef) -> LoopStepResponded:
    return LoopStepResponded(turn=1, step=n, message=message, stop_reason="tool_use",
                             usage={}, latency_ms=1.0)


def test_calls_fold_to_their_status_in_start_order():
    """Started, completed and interrupted calls keep start order; ends find their start."""
    state = fold_session(recorded([
        *opening(), step(1, STEP_1), start("a"), start("b", "fs_read", effects=False),
        ToolCompleted(tool="fs_read", ok=True, result=RESULT, duration_ms=1.0,
                      tool_call_id="b", turn=1),
        ToolCallInterrupted(tool="fs_write", reason="client_disconnected",
                            effects_possible=True, tool_call_id="a", turn=1),
        step(2, STEP_2), start("c", "git_commit"),
    ]))
    assert state is not None
    turn = state.turn(1)
    assert turn.steps == (STEP_1, STEP_2)
    assert [(c.tool_call_id, c.tool, c.status) for c in turn.tool_calls] == [
        ("a", "fs_write", "interrupted"), ("b", "fs_read", "completed"),
        ("c", "git_commit", "started")]
    a, b, c = turn.tool_calls
    assert (a.reason, a.effects_possible, a.ok, a.result) == (
        "client_disconnected", True, None, None)
    assert (b.ok, b.result, b.effects_possible) == (True, RESULT, False)
    assert c.effects_possible is True
    assert turn.tool_results == 1


def test_refused_call_is_completed_without_a_start():
    """A deny's ToolCompleted (no ToolCallStarted) is a completed, failed call."""
    state = fold_session(recorded([
        *opening(),
        PolicyDecided(tool="git_push", policy="git", rule="git.push", decision="deny",
                      reason="r", inputs_digest="d", fields={}, config_hash="c",
                      tool_call_id="p", turn=1),
        ToolCompleted(tool="git_push", ok=False, result=RESULT, duration_ms=1.0,
                      tool_call_id="p", turn=1),
    ]))
    assert state is not None
    (call,) = state.turn(1).tool_calls
    assert (call.tool_call_id, call.status, call.ok, call.effects_possible) == (
        "p", "completed", False, False)


def test_calls_outside_a_turn_leave_turns_alone():
    """A CLI call (no turn) folds without touching any turn."""
    state = fold_session(recorded([
        SessionStarted(session_id="s1", source="cli"),
        ToolCallStarted(tool="fs_read", inputs_digest="d", effects=False, tool_call_id="x",
                        caller="cli:alice"),
        ToolCallInterrupted(tool="fs_read", reason="cancelled", effects_possible=False,
                            tool_call_id="x"),
    ]))
    assert state is not None
    assert state.turns == () or len(state.turns) == 0
    assert state.event_count == 3


def test_start_after_the_turn_ended_is_rejected():
    """A tool call cannot start in a turn that already ended."""
    with pytest.raises(SessionFoldError, match="already aborted"):
        fold_session(recorded([*opening(), StreamAborted(turn=1, reason="x"), start("a")]))


def test_step_for_a_turn_that_never_started_is_rejected():
    """A loop step names its turn, which must exist."""
    with pytest.raises(SessionFoldError, match="never started"):
        fold_session(recorded([*opening(), LoopStepResponded(
            turn=2, step=1, message=STEP_1, stop_reason="tool_use", usage={},
            latency_ms=1.0)]))


def test_turn_as_dict_is_json_with_calls_and_steps():
    """`as_dict` renders calls as objects and refs as hex (for `lynkr replay --json`)."""
    state = fold_session(recorded([*opening(), step(1, STEP_1), start("a")]))
    assert state is not None
    data = json.loads(json.dumps(state.turn(1).as_dict()))
    assert data["steps"] == [STEP_1.hex]
    assert data["tool_calls"][0]["status"] == "started"
    assert data["tool_calls"][0]["tool_call_id"] == "a"
