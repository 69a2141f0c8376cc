"""A session with agent-loop turns, for transcript, replay and audit tests (not a test).

`session-loop`, by sequence number:

| seq | event |
|---|---|
| 1 | SessionStarted |
| 2-3 | turn 1: TurnStarted ("make a task"), RouteChosen |
| 4 | LoopStepResponded step 1: "I'll create it." + tool_use workspace_task_create |
| 5-7 | PolicyDecided allow (session), ToolCallStarted, ToolCompleted {"task_id": "t-1"} |
| 8-9 | ModelResponded "Created task t-1.", CacheStored |
| 10 | SessionLoopStopped (no turn) |
| 11-13 | turn 2: TurnStarted ("again"), CacheHit, ModelResponded |
| 14-19 | turn 3: TurnStarted, RouteChosen, step, PolicyDecided, started, interrupted |
| 20 | StreamAborted |
| 21-22 | PolicyDecided deny + ToolCompleted outside any turn (caller cli:alice) |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore import Event, Recorder, make_blob
from eventstore.events.session import (
    CacheHit,
    CacheStored,
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
)

STREAM = "session-loop"
CALL_STARTED_SEQ = 6  # turn 1's tool call is running after this event
LAST_SEQ = 22


def _append(recorder: Recorder, events: list[Event], blobs: Sequence[Any] = ()) -> None:
    recorder.append(STREAM, recorder.stream_version(STREAM), events, blobs=list(blobs))


def _decided(tool: str, decision: str, call: str | None, turn: int | None,
             caller: str) -> PolicyDecided:
    return PolicyDecided(tool=tool, policy="tasks", rule=f"{tool}.rule", decision=decision,
                         reason=f"{tool} {decision}ed", inputs_digest="ab" * 32, fields={},
                         config_hash="cd" * 32, tool_call_id=call, turn=turn, caller=caller)


def _turn(recorder: Recorder, turn: int, text: str) -> None:
    message = make_blob({"role": "user", "content": text})
    _append(recorder, [TurnStarted(turn=turn, request_id=f"r{turn}", model="claude-sonnet",
                                   stream=True, messages=(message[0],))], [message])


def _answer(turn: int, text: str) -> tuple[ModelResponded, tuple[Any, bytes]]:
    blob = make_blob({"role": "assistant", "content": [{"type": "text", "text": text}]})
    return ModelResponded(turn=turn, message=blob[0], stop_reason="end_turn",
                          usage={"input_tokens": 10, "output_tokens": 3},
                          latency_ms=5.0), blob


def _step(turn: int, text: str, tool: str, call: str, inputs: dict[str, Any]) -> tuple[
        LoopStepResponded, tuple[Any, bytes]]:
    blob = make_blob({"role": "assistant", "content": [
        {"type": "text", "text": text},
        {"type": "tool_use", "id": call, "name": tool, "input": inputs}]})
    return LoopStepResponded(turn=turn, step=1, message=blob[0], stop_reason="tool_use",
                             usage={"input_tokens": 8, "output_tokens": 2},
                             latency_ms=4.0), blob


def write_loop_session(recorder: Recorder) -> None:
    """Append `session-loop` (see module docstring) to `recorder`."""
    _append(recorder, [SessionStarted(session_id="loop", source="header")])
    route = RouteChosen(turn=1, provider="p", backend_model="m", reason="default")
    _turn(recorder, 1, "make a task")
    step, step_blob = _step(1, "I'll create it.", "workspace_task_create", "toolu_1",
                            {"title": "write docs"})
    result = make_blob({"task_id": "t-1", "title": "write docs"})
    _append(recorder, [route, step,
                       _decided("workspace_task_create", "allow", "toolu_1", 1, "session"),
                       ToolCallStarted(tool="workspace_task_create", inputs_digest="ef" * 32,
                                       effects=False, tool_call_id="toolu_1", turn=1,
                                       caller="session"),
                       ToolCompleted(tool="workspace_task_create", ok=True, result=result[0],
                                     duration_ms=3.0, tool_call_id="toolu_1", turn=1)],
            [step_blob, result])
    answer, answer_blob = _answer(1, "Created task t-1.")
    _append(recorder, [answer, CacheStored(turn=1, key="9" * 64, message=answer.message,
                                           input_tokens=10, expires_at=9e9)], [answer_blob])
    _append(recorder, [SessionLoopStopped(request_id="r-stop", rule="repeated_request",
                                          count=3, turns=(1,), reason="same request again")])
    _turn(recorder, 2, "again")
    hit, hit_blob = _answer(2, "Created task t-1.")
    _append(recorder, [CacheHit(turn=2, key="9" * 64, message=hit.message, input_tokens=10,
                                stored_at=1.0), hit], [hit_blob])
    _turn(recorder, 3, "run the slow thing")
    step, step_blob = _step(3, "", "workspace_test_run", "toolu_3", {})
    _append(recorder, [RouteChosen(turn=3, provider="p", backend_model="m", reason="default"),
                       step, _decided("workspace_test_run", "allow", "toolu_3", 3, "session"),
                       ToolCallStarted(tool="workspace_test_run", inputs_digest="ef" * 32,
                                       effects=True, tool_call_id="toolu_3", turn=3,
                                       caller="session"),
                       ToolCallInterrupted(tool="workspace_test_run",
                                           reason="gateway_restarted", effects_possible=True,
                                           tool_call_id="toolu_3", turn=3),
                       StreamAborted(turn=3, reason="the gateway restarted")], [step_blob])
    denied = make_blob({"error": "denied by policy fs.path.confined"})
    _append(recorder, [_decided("fs_read", "deny", "lynkr_1", None, "cli:alice"),
                       ToolCompleted(tool="fs_read", ok=False, result=denied[0],
                                     duration_ms=0.5, tool_call_id="lynkr_1")], [denied])
