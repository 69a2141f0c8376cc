"""The runner: validate, decide, run, record — through a direct sink or the session actor."""

from __future__ import annotations

import pytest

from actors import EventStore, Sessions, TurnRequest
from eventstore import SqliteRecorder
from eventstore.events.session import PolicyDecided, SessionStarted, ToolCompleted
from lynkr.errors import ToolError
from lynkr.tools import (
    ActorSessionSink,
    Decision,
    PolicySettings,
    RecorderSessionSink,
    ToolRegistry,
    ToolRunner,
    ToolSpec,
    inputs_digest,
)

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
calls: list[int] = []


async def _double(ctx, inputs):
    calls.append(inputs["n"])
    return {"double": inputs["n"] * 2}


async def _fails(ctx, inputs):
    raise ToolError("the thing is broken")


async def _crashes(ctx, inputs):
    raise ValueError("internal detail /secret/path")


async def _two_step(ctx, inputs):
    await ctx.enforce(Decision.allow("demo", "demo.first", "fine"))
    await ctx.enforce(Decision.deny("demo", "demo.second", "not fine", setting="DEMO=1"))
    return {"unreachable": True}


async def _deny_odd(ctx, inputs):
    if inputs["n"] % 2:
        return Decision.deny("demo", "demo.even", "odd numbers are refused", setting="DEMO_ODD",
                             n=inputs["n"])
    return Decision.allow("demo", "demo.even", "even", n=inputs["n"])


def _spec(name, handler, check=None):
    return ToolSpec(name=name, description=name, input_schema=SCHEMA, handler=handler,
                    policy="demo", check=check)


TOOLS = [_spec("double", _double), _spec("fails", _fails), _spec("crashes", _crashes),
         _spec("two_step", _two_step), _spec("even_only", _double, _deny_odd)]


@pytest.fixture
def store(tmp_path):
    recorder = SqliteRecorder(tmp_path / "log.db")
    yield recorder
    recorder.close()


@pytest.fixture
def runner(store, tmp_path):
    settings = PolicySettings(workspace_root=tmp_path, max_steps=3)
    return ToolRunner(ToolRegistry(TOOLS), settings, sink=RecorderSessionSink(store),
                      recorder=store)


def events(store, session="s"):
    return [r.event for r in store.read_stream(f"session-{session}")]


async def test_allowed_call_records_decision_then_result(runner, store):
    """A call appends SessionStarted, PolicyDecided(allow) and ToolCompleted with the blob."""
    result = await runner.call("double", {"n": 4}, session_id="s", tool_call_id="toolu_9")
    assert result.ok
    assert result.content == {"double": 8}
    started, decided, completed = events(store)
    assert isinstance(started, SessionStarted)
    assert started.source == "cli"
    assert isinstance(decided, PolicyDecided)
    assert (decided.rule, decided.decision) == ("demo.default", "allow")
    assert decided.inputs_digest == inputs_digest({"n": 4})
    assert decided.config_hash == runner.settings.config_hash
    assert isinstance(completed, ToolCompleted)
    assert completed.ok
    assert completed.tool_call_id == "toolu_9"
    assert store.load_blob(completed.result) == {"double": 8}


async def test_denied_check_stops_before_the_handler(runner, store):
    """A deny from the tool's check is recorded and the handler never runs."""
    calls.clear()
    result = await runner.call("even_only", {"n": 3}, session_id="s")
    assert not result.ok
    assert result.error_type == "PolicyDeniedError"
    assert "DEMO_ODD" in result.content["error"]
    assert calls == []
    decided = [e for e in events(store) if isinstance(e, PolicyDecided)]
    assert [(d.rule, d.decision, d.fields["n"]) for d in decided] == [("demo.even", "deny", 3)]
    assert [e.ok for e in events(store) if isinstance(e, ToolCompleted)] == [False]


async def test_step_limit_is_enforced(runner, store):
    """Step 4 with POLICY_MAX_STEPS=3 is denied under steps.max."""
    result = await runner.call("double", {"n": 1}, session_id="s", step=4)
    assert not result.ok
    assert "POLICY_MAX_STEPS" in result.content["error"]
    assert [e.rule for e in events(store) if isinstance(e, PolicyDecided)] == ["steps.max"]


async def test_invalid_input_is_a_tool_error_not_a_crash(runner, store):
    """Schema violations come back as ToolInputError and are recorded as failed results."""
    result = await runner.call("double", {"n": "four"}, session_id="s")
    assert not result.ok
    assert result.error_type == "ToolInputError"
    assert [e.ok for e in events(store) if isinstance(e, ToolCompleted)] == [False]


async def test_tool_error_reaches_the_caller(runner):
    """A ToolError from the handler is the result's error text."""
    result = await runner.call("fails", {"n": 1}, session_id="s")
    assert result.content == {"error": "the thing is broken"}
    assert result.tool_result_block("toolu_1") == {
        "type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
        "content": '{\n  "error": "the thing is broken"\n}'}


async def test_crash_in_a_handler_is_contained_and_not_leaked(runner):
    """An unexpected exception becomes a generic InternalError; details stay in the log."""
    result = await runner.call("crashes", {"n": 1}, session_id="s")
    assert result.error_type == "InternalError"
    assert "secret" not in result.text()


async def test_decisions_taken_while_running_are_recorded(runner, store):
    """ctx.enforce records each decision; a deny ends the call."""
    result = await runner.call("two_step", {"n": 1}, session_id="s")
    assert not result.ok
    assert "DEMO=1" in result.content["error"]
    assert [(e.rule, e.decision) for e in events(store) if isinstance(e, PolicyDecided)] == [
        ("demo.default", "allow"), ("demo.first", "allow"), ("demo.second", "deny")]


async def test_actor_sink_records_within_the_sessions_turn(tmp_path):
    """Through `Sessions.record`, events land in the open turn of the session actor."""
    store = EventStore.open(tmp_path / "actors.db")
    sessions = Sessions.start(store)
    reader = SqliteRecorder(tmp_path / "actors.db")
    try:
        turn = await sessions.begin_turn("a1", TurnRequest(request_id="r1", model="m",
                                                           stream=False))
        runner = ToolRunner(ToolRegistry(TOOLS), PolicySettings(workspace_root=tmp_path),
                            sink=ActorSessionSink(sessions), recorder=reader)
        result = await runner.call("double", {"n": 2}, session_id="a1", turn=turn)
        assert result.ok
        state = await sessions.state("a1")
        assert state.policy_decisions == 1
        assert state.tool_results == 1
        recorded = [r.event for r in reader.read_stream("session-a1")]
        assert [getattr(e, "turn", None) for e in recorded[-2:]] == [turn, turn]
    finally:
        reader.close()
        await sessions.aclose()
        await store.aclose()
