"""The session fold: a pure function of the stream that rejects events that do not fit."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import BlobRef, Event, Metadata, Recorded
from eventstore.events.session import (
    ModelResponded,
    PolicyDecided,
    RouteChosen,
    SessionStarted,
    StreamAborted,
    ToolCompleted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.events.system import ActorCrashed
from eventstore.projections.session_state import (
    SessionFoldError,
    SessionState,
    TurnState,
    _replace_session,
    _replace_turn,
    evolve_session,
    fold_session,
)

STREAM = "session-s1"
REF = BlobRef(b"\x01" * 32, 3)


def recorded(events: list[Event], first_seq: int = 1) -> list[Recorded[Event]]:
    return [
        Recorded(position=100 + seq, stream_id=STREAM, seq=seq, event=event,
                 recorded_at=1000.0 + seq, metadata=Metadata())
        for seq, event in enumerate(events, start=first_seq)
    ]


def started() -> SessionStarted:
    return SessionStarted(session_id="s1", source="header", client="claude-cli/2.0")


def turn(n: int, model: str = "claude-sonnet-4") -> TurnStarted:
    return TurnStarted(turn=n, request_id=f"req-{n}", model=model, stream=True)


def responded(n: int, **usage: int) -> ModelResponded:
    return ModelResponded(turn=n, message=REF, stop_reason="end_turn",
                          usage=usage or {"input_tokens": 10, "output_tokens": 5},
                          latency_ms=12.0)


def policy(n: int | None, decision: str = "allow") -> PolicyDecided:
    return PolicyDecided(tool="git_push", policy="git", rule="git.push", decision=decision,
                         reason="r", inputs_digest="d", fields={}, config_hash="c", turn=n)


def test_full_turn_folds_into_a_responded_turn_with_route_and_usage():
    """A started, routed and answered turn is 'responded', with its route and usage."""
    state = fold_session(recorded([
        started(), turn(1), RouteChosen(turn=1, provider="ollama", backend_model="qwen",
                                        reason="default"),
        policy(1), ToolCompleted(tool="git_push", ok=True, result=REF, duration_ms=1, turn=1),
        responded(1, input_tokens=7, output_tokens=3),
    ]))
    assert state is not None
    t = state.turn(1)
    assert (t.status, t.provider, t.backend_model) == ("responded", "ollama", "qwen")
    assert (t.policy_decisions, t.tool_results, t.finished_at) == (1, 1, 1006.0)
    assert dict(state.usage) == {"input_tokens": 7, "output_tokens": 3}
    assert (state.version, state.event_count, state.last_position) == (6, 6, 106)
    assert (state.started_at, state.last_activity) == (1001.0, 1006.0)
    assert (state.model, state.provider, state.open_turns) == ("claude-sonnet-4", "ollama", ())


def test_usage_sums_integer_counters_across_turns_and_ignores_the_rest():
    """Session usage adds integer counters of every answer; strings and maps are skipped."""
    odd = ModelResponded(turn=2, message=REF, stop_reason="end_turn", latency_ms=1.0,
                         usage={"input_tokens": 1, "service_tier": "standard",  # type: ignore[dict-item]
                                "cache_creation": {"x": 1}})  # type: ignore[dict-item]
    state = fold_session(recorded([started(), turn(1), responded(1), turn(2), odd]))
    assert state is not None
    assert dict(state.usage) == {"input_tokens": 11, "output_tokens": 5}


def test_failed_and_aborted_turns_keep_their_reason():
    """UpstreamFailed marks a turn failed and StreamAborted marks it aborted, with why."""
    state = fold_session(recorded([
        started(), turn(1), turn(2),
        UpstreamFailed(turn=1, status=529, error_type="overloaded_error", message="busy"),
        StreamAborted(turn=2, reason="no finish reason"),
    ]))
    assert state is not None
    assert (state.turn(1).status, state.turn(1).error) == ("failed", "overloaded_error")
    assert (state.turn(2).status, state.turn(2).error) == ("aborted", "no finish reason")


def test_policy_denials_count_in_the_turn_and_the_session():
    """A deny counts as a policy decision and as a denial, also without a turn."""
    state = fold_session(recorded([started(), turn(1), policy(1, "deny"), policy(None)]))
    assert state is not None
    assert (state.policy_decisions, state.denials) == (2, 1)
    assert (state.turn(1).policy_decisions, state.turn(1).denials) == (1, 1)


def test_response_for_a_turn_that_never_started_is_rejected():
    """ModelResponded for an unknown turn raises SessionFoldError naming the seq and turn."""
    with pytest.raises(SessionFoldError, match=r"seq 2: ModelResponded for turn 1, which never"):
        fold_session(recorded([started(), responded(1)]))


def test_second_outcome_for_a_turn_is_rejected():
    """A turn that already responded cannot fail afterwards."""
    events = [started(), turn(1), responded(1),
              UpstreamFailed(turn=1, status=500, error_type="api_error", message="x")]
    with pytest.raises(SessionFoldError, match="already responded"):
        fold_session(recorded(events))


def test_stream_must_start_with_session_started():
    """A stream whose first event is not SessionStarted cannot be folded."""
    with pytest.raises(SessionFoldError, match="not SessionStarted"):
        fold_session(recorded([turn(1)]))


def test_session_cannot_start_twice():
    """A second SessionStarted is rejected."""
    with pytest.raises(SessionFoldError, match="already started"):
        fold_session(recorded([started(), started()]))


def test_turn_numbers_must_follow_each_other():
    """TurnStarted must carry the next turn number."""
    with pytest.raises(SessionFoldError, match="turn 3, expected 2"):
        fold_session(recorded([started(), turn(1), turn(3)]))


def test_sequence_gap_is_rejected():
    """An event whose seq does not follow the state's version is rejected."""
    state = fold_session(recorded([started()]))
    with pytest.raises(SessionFoldError, match="expected seq 2"):
        evolve_session(state, recorded([turn(1)], first_seq=3)[0])


def test_event_of_another_stream_kind_is_rejected():
    """A system event in a session stream does not fit."""
    crash = ActorCrashed(actor="x", error_type="E", error="e")
    with pytest.raises(SessionFoldError, match="ActorCrashed does not belong"):
        fold_session(recorded([started(), crash]))


def test_turn_lookup_of_a_missing_turn_raises_key_error():
    """`state.turn(n)` for a turn that does not exist raises KeyError."""
    state = fold_session(recorded([started()]))
    assert state is not None
    with pytest.raises(KeyError):
        state.turn(1)


def test_as_dict_is_json_ready():
    """`as_dict` gives plain values that json can dump."""
    state = fold_session(recorded([started(), turn(1), responded(1)]))
    assert state is not None
    data = json.loads(json.dumps(state.as_dict()))
    assert data["turns"][0]["usage"] == {"input_tokens": 10, "output_tokens": 5}


def test_empty_stream_folds_to_none():
    """Folding no events gives back the start state (None for a new session)."""
    assert fold_session([]) is None


@st.composite
def session_streams(draw: st.DrawFn) -> list[Event]:
    """A valid session stream: turns begin, get routed, use tools and end, interleaved."""
    events: list[Event] = [started()]
    open_turns: list[int] = []
    count = 0
    for _ in range(draw(st.integers(0, 40))):
        action = draw(st.sampled_from(["begin", "route", "policy", "tool", "end"]))
        if action == "begin" or not open_turns:
            count += 1
            open_turns.append(count)
            events.append(turn(count, draw(st.sampled_from(["opus", "haiku"]))))
            continue
        n = draw(st.sampled_from(open_turns))
        if action == "route":
            events.append(RouteChosen(turn=n, provider="p", backend_model="m", reason="r"))
        elif action == "policy":
            events.append(policy(n, draw(st.sampled_from(["allow", "deny"]))))
        elif action == "tool":
            events.append(ToolCompleted(tool="t", ok=True, result=REF, duration_ms=1, turn=n))
        else:
            open_turns.remove(n)
            events.append(draw(st.sampled_from([
                responded(n, input_tokens=draw(st.integers(0, 99))),
                UpstreamFailed(turn=n, status=502, error_type="api_error", message="m"),
                StreamAborted(turn=n, reason="cut"),
            ])))
    return events


@given(events=session_streams(), data=st.data())
@settings(max_examples=60, deadline=None)
def test_fold_of_prefix_then_tail_equals_fold_of_all(events, data):
    """fold(tail, start=fold(prefix)) == fold(all) for every split of a valid stream."""
    records = recorded(events)
    cut = data.draw(st.integers(1, len(records)))
    assert fold_session(records[cut:], start=fold_session(records[:cut])) == fold_session(records)


@given(events=session_streams())
@settings(max_examples=40, deadline=None)
def test_fold_counts_every_event_and_every_turn(events):
    """The state's version and event count equal the stream length; every turn is known."""
    state = fold_session(recorded(events))
    assert state is not None
    assert state.version == state.event_count == len(events)
    assert len(state.turns) == sum(isinstance(e, TurnStarted) for e in events)


def test_the_generated_replace_matches_dataclasses_replace():
    """The fold's fast replace equals `dataclasses.replace` and refuses unknown fields."""
    turn = TurnState(number=1, request_id="r", model="m", stream=True, started_at=1.0)
    changed = {"status": "responded", "finished_at": 2.0, "usage": {"input_tokens": 3}}
    assert _replace_turn(turn, **changed) == dataclasses.replace(turn, **changed)
    assert _replace_turn(turn) == turn
    state = SessionState(session_id="s", stream_id="session-s", source="header", client=None,
                         version=1, event_count=1, last_position=1, started_at=1.0,
                         last_activity=1.0)
    moved = {"version": 2, "turns": (turn,), "model": "m"}
    assert _replace_session(state, **moved) == dataclasses.replace(state, **moved)
    with pytest.raises(TypeError, match="colour"):
        _replace_turn(turn, colour="red")


def test_a_long_session_folds_without_copying_its_old_turns() -> None:
    """Each event of turn 201 leaves the first 200 turns' storage in place (the fold of a
    session is not quadratic in its length; tools/bench_session_fold.py measures it)."""
    events: list[Event] = [started()]
    for n in range(1, 201):
        events += [turn(n), responded(n)]
    state = fold_session(recorded(events))
    assert state is not None
    seq = state.version
    for event in (turn(201), responded(201)):
        seq += 1
        after = evolve_session(state, recorded([event], first_seq=seq)[0])
        assert after.turns[:200] == state.turns[:200]
        assert all(a is b for a, b in zip(after.turns._chunks, state.turns._chunks, strict=False))
        state = after
    assert [t.number for t in state.turns] == list(range(1, 202))
