"""Session commands are pure: they validate against a state and return events, no actors."""

from __future__ import annotations

import dataclasses

import pytest

from actors import CommandRejectedError, TurnRequest, begin_turn, finish_turn, record_events
from eventstore import BlobRef, Event, Metadata, Recorded, decode_value, make_blob
from eventstore.events.session import (
    ModelResponded,
    PolicyDecided,
    RouteChosen,
    SessionStarted,
    ToolCompleted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections.session_state import SessionState, fold_session

REF = BlobRef(b"\x02" * 32, 4)
SYSTEM = [{"type": "text", "text": "You are Claude Code." * 100}]
TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]


def request(n: int = 1, **changes) -> TurnRequest:
    base = dict(request_id=f"req-{n}", model="claude-sonnet-4", stream=True, system=SYSTEM,
                tools=TOOLS, messages=[{"role": "user", "content": f"hello {n}"}],
                params={"max_tokens": 100, "stop_sequences": ["x"]}, source="header",
                client="claude-cli")
    base.update(changes)
    return TurnRequest(**base)


def apply(state: SessionState | None, events) -> SessionState:
    start = state.version if state else 0
    records = [Recorded(position=start + i, stream_id="session-s", seq=start + i, event=e,
                        recorded_at=float(start + i), metadata=Metadata())
               for i, e in enumerate(events, start=1)]
    result = fold_session(records, start=state)
    assert result is not None
    return result


def one_turn() -> SessionState:
    return apply(None, begin_turn(None, "s", request()).events)


def responded(turn: int) -> ModelResponded:
    return ModelResponded(turn=turn, message=REF, stop_reason="end_turn",
                          usage={"input_tokens": 1}, latency_ms=1.0)


def test_first_turn_starts_the_session():
    """On an empty session, begin_turn returns SessionStarted then TurnStarted(turn=1)."""
    decision = begin_turn(None, "s", request())
    started, turn = decision.events
    assert started == SessionStarted(session_id="s", source="header", client="claude-cli")
    assert isinstance(turn, TurnStarted)
    assert (turn.turn, turn.request_id, turn.model, turn.stream) == (1, "req-1", "claude-sonnet-4",
                                                                   True)


def test_turn_parts_become_content_addressed_blobs():
    """System blocks, messages and the tool list are blobs referenced by the TurnStarted."""
    decision = begin_turn(None, "s", request())
    turn = decision.events[1]
    assert isinstance(turn, TurnStarted)
    stored = {ref.digest: data for ref, data in decision.blobs}
    assert decode_value(stored[turn.system[0].digest]) == decode_value(make_blob(SYSTEM[0])[1])
    assert turn.tools is not None
    assert turn.tools.digest in stored
    assert [ref.digest in stored for ref in turn.messages] == [True]


def test_params_are_stored_in_their_read_back_shape():
    """Lists in params become tuples, as they will be when the event is read back."""
    turn = begin_turn(None, "s", request()).events[1]
    assert isinstance(turn, TurnStarted)
    assert turn.params == {"max_tokens": 100, "stop_sequences": ("x",)}


def test_same_content_twice_gives_one_blob():
    """Identical messages in one request are one blob."""
    msgs = [{"role": "user", "content": "same"}] * 3
    decision = begin_turn(None, "s", request(messages=msgs, system=[], tools=None))
    turn = decision.events[1]
    assert isinstance(turn, TurnStarted)
    assert len(decision.blobs) == 1
    assert len(set(turn.messages)) == 1


def test_string_system_prompt_is_one_block():
    """A plain string system prompt is stored as one block."""
    turn = begin_turn(None, "s", request(system="be brief")).events[1]
    assert isinstance(turn, TurnStarted)
    assert len(turn.system) == 1


def test_later_turns_take_the_next_number_without_session_started():
    """On a started session, begin_turn returns only TurnStarted with the next number."""
    decision = begin_turn(one_turn(), "s", request(2))
    [turn] = decision.events
    assert isinstance(turn, TurnStarted)
    assert turn.turn == 2


def test_unstorable_request_values_are_rejected():
    """Values that are not JSON-like are refused before anything is appended."""
    with pytest.raises(CommandRejectedError, match="params cannot be stored"):
        begin_turn(None, "s", request(params={"x": object()}))
    with pytest.raises(CommandRejectedError, match="messages cannot be stored"):
        begin_turn(None, "s", request(messages=[{"content": object()}]))


def test_request_without_model_is_rejected():
    """A turn needs a request id and a model."""
    with pytest.raises(CommandRejectedError, match="request id and a model"):
        begin_turn(None, "s", request(model=""))


def test_record_fills_in_the_turn_of_tool_events():
    """Tool events without a turn are given the command's turn."""
    tool = ToolCompleted(tool="t", ok=True, result=REF, duration_ms=1)
    route = RouteChosen(turn=1, provider="p", backend_model="m", reason="r")
    decision = record_events(one_turn(), 1, [route, tool], blobs=[(REF, b"data")])
    assert decision.events == (route, ToolCompleted(tool="t", ok=True, result=REF, duration_ms=1,
                                                    turn=1))
    assert decision.blobs == ((REF, b"data"),)


def test_record_rejects_events_of_another_kind():
    """record takes only RouteChosen, PolicyDecided and ToolCompleted."""
    with pytest.raises(CommandRejectedError, match="not ModelResponded"):
        record_events(one_turn(), 1, [responded(1)])


def test_record_rejects_an_event_naming_another_turn():
    """An event that names a different turn than the command is refused."""
    route = RouteChosen(turn=2, provider="p", backend_model="m", reason="r")
    with pytest.raises(CommandRejectedError, match="names turn 2, not 1"):
        record_events(one_turn(), 1, [route])


def test_record_rejects_an_unknown_turn():
    """Recording into a turn that never started is refused."""
    policy = PolicyDecided(tool="t", policy="fs", rule="r", decision="deny", reason="r",
                           inputs_digest="d", fields={}, config_hash="c")
    with pytest.raises(CommandRejectedError, match="turn 5 does not exist"):
        record_events(one_turn(), 5, [policy])
    with pytest.raises(CommandRejectedError, match="session has no turns"):
        record_events(None, 1, [policy])


def test_record_needs_events():
    """An empty record is refused."""
    with pytest.raises(CommandRejectedError, match="at least one event"):
        record_events(one_turn(), 1, [])


def test_finish_turn_returns_the_outcome():
    """finish_turn on an open turn returns the outcome event and its blobs."""
    decision = finish_turn(one_turn(), 1, responded(1), [(REF, b"m")])
    assert decision.events == (responded(1),)


def test_finish_turn_rejects_a_finished_turn():
    """A turn that already ended cannot end again."""
    state = apply(one_turn(), [responded(1)])
    failed = UpstreamFailed(turn=1, status=500, error_type="api_error", message="m")
    with pytest.raises(CommandRejectedError, match=r"already ended \(responded\)"):
        finish_turn(state, 1, failed)


def test_finish_turn_rejects_other_events_and_other_turns():
    """Only outcome events for the named turn are accepted."""
    route: Event = RouteChosen(turn=1, provider="p", backend_model="m", reason="r")
    with pytest.raises(CommandRejectedError, match="not RouteChosen"):
        finish_turn(one_turn(), 1, route)
    state = apply(one_turn(), begin_turn(one_turn(), "s", request(2)).events)
    with pytest.raises(CommandRejectedError, match="names turn 2, not 1"):
        finish_turn(state, 1, responded(2))


def test_commands_return_events_the_fold_accepts():
    """A whole turn built from commands folds into a responded turn."""
    state = one_turn()
    state = apply(state, record_events(state, 1, [
        RouteChosen(turn=1, provider="p", backend_model="m", reason="r")]).events)
    state = apply(state, finish_turn(state, 1, responded(1)).events)
    assert (state.turn(1).status, state.turn(1).provider) == ("responded", "p")


def test_a_routed_request_also_records_its_route():
    """begin_turn with provider and backend model appends RouteChosen for the new turn."""
    routed = dataclasses.replace(request(), provider="openai", backend_model="gpt-x",
                                 route_reason="MODEL_PROVIDER=openai")
    events = begin_turn(None, "s", routed).events
    assert events[-1] == RouteChosen(turn=1, provider="openai", backend_model="gpt-x",
                                     reason="MODEL_PROVIDER=openai")


def test_a_route_without_backend_model_is_rejected():
    """A provider without a backend model is an incomplete routing decision."""
    with pytest.raises(CommandRejectedError, match="backend model"):
        begin_turn(None, "s", dataclasses.replace(request(), provider="openai"))
