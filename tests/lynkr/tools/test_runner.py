"""The runner: validate, decide, run, record — outside a turn through the event store,
within one through the session actor (`StoreSessionSink`, the one sink)."""

from __future__ import annotations

import pytest
import trio
from structlog.testing import capture_logs

from actors import EventStore, Sessions, TurnRequest
from eventstore import SqliteRecorder
from eventstore.events.session import (
    PolicyDecided,
    SessionStarted,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
)
from lynkr.errors import ToolError
from lynkr.tools import (
    Decision,
    PolicySettings,
    StoreSessionSink,
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


async def _big(ctx, inputs):
    return "é" * inputs["n"]  # two UTF-8 bytes each


slow_started = trio.Event()


async def _slow(ctx, inputs):
    slow_started.set()
    await trio.sleep(inputs["n"])
    return {"slept": inputs["n"]}


def _spec(name, handler, check=None, *, effects=True):
    return ToolSpec(name=name, description=name, input_schema=SCHEMA, handler=handler,
                    policy="demo", check=check, effects=effects)


TOOLS = [_spec("double", _double), _spec("fails", _fails), _spec("crashes", _crashes),
         _spec("two_step", _two_step), _spec("even_only", _double, _deny_odd),
         _spec("big", _big, effects=False), _spec("slow", _slow),
         _spec("slow_reader", _slow, effects=False)]


@pytest.fixture
def store(tmp_path):
    recorder = SqliteRecorder(tmp_path / "log.db")
    yield recorder
    recorder.close()


@pytest.fixture
def event_store(store):
    """The append path over `store` (stopping it closes `store`)."""
    started = EventStore.start(store)
    yield started
    started.stop()


@pytest.fixture
def runner(store, event_store, tmp_path):
    settings = PolicySettings(workspace_root=tmp_path, max_steps=3)
    return ToolRunner(ToolRegistry(TOOLS), settings, store=event_store, recorder=store)


def events(store, session="s"):
    return [r.event for r in store.read_stream(f"session-{session}")]


async def test_allowed_call_records_decision_then_result(runner, store):
    """A call appends SessionStarted, PolicyDecided(allow) and ToolCompleted with the blob."""
    result = await runner.call("double", {"n": 4}, session_id="s", tool_call_id="toolu_9")
    assert result.ok
    assert result.content == {"double": 8}
    started, decided, running, completed = events(store)
    assert isinstance(started, SessionStarted)
    assert started.source == "cli"
    assert isinstance(decided, PolicyDecided)
    assert (decided.rule, decided.decision) == ("demo.default", "allow")
    assert decided.inputs_digest == inputs_digest({"n": 4})
    assert decided.config_hash == runner.settings.config_hash
    assert isinstance(running, ToolCallStarted)
    assert (running.tool, running.tool_call_id, running.effects) == ("double", "toolu_9", True)
    assert running.inputs_digest == inputs_digest({"n": 4})
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
    """Schema violations come back as ToolInputError naming the field; the tool never
    starts, and the failed result is recorded."""
    result = await runner.call("double", {"n": "four"}, session_id="s")
    assert not result.ok
    assert result.error_type == "ToolInputError"
    assert result.content == {"error": "double: invalid input at n: 'four' is not of type "
                                       "'integer'"}
    assert result.tool_result_block("toolu_1")["is_error"] is True
    assert [e.ok for e in events(store) if isinstance(e, ToolCompleted)] == [False]
    assert not [e for e in events(store) if isinstance(e, ToolCallStarted)]


async def test_input_that_is_not_an_object_is_an_error_result(runner):
    """A list where an object belongs is refused as input, not raised."""
    result = await runner.call("double", ["n"], session_id="s")
    assert (result.ok, result.error_type) == (False, "ToolInputError")


async def test_tool_error_reaches_the_caller(runner):
    """A ToolError from the handler is the result's error text."""
    result = await runner.call("fails", {"n": 1}, session_id="s")
    assert result.content == {"error": "the thing is broken"}
    assert result.tool_result_block("toolu_1") == {
        "type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
        "content": '{\n  "error": "the thing is broken"\n}'}


async def test_crash_in_a_handler_gives_class_and_message_and_logs_the_stack(runner, store):
    """An unexpected exception is an error result naming its class and message; the stack
    is logged on the server only."""
    with capture_logs() as logs:
        result = await runner.call("crashes", {"n": 1}, session_id="s")
    assert not result.ok
    assert result.error_type == "ValueError"
    assert result.content == {
        "error": "crashes failed unexpectedly: ValueError: internal detail /secret/path"}
    assert "Traceback" not in result.text()
    crashed = [e for e in logs if e["event"] == "tool_crashed"]
    assert crashed
    assert crashed[0]["exc_info"] is True
    assert [e.ok for e in events(store) if isinstance(e, ToolCompleted)] == [False]


async def test_decisions_taken_while_running_are_recorded(runner, store):
    """ctx.enforce records each decision; a deny ends the call."""
    result = await runner.call("two_step", {"n": 1}, session_id="s")
    assert not result.ok
    assert "DEMO=1" in result.content["error"]
    assert [(e.rule, e.decision) for e in events(store) if isinstance(e, PolicyDecided)] == [
        ("demo.default", "allow"), ("demo.first", "allow"), ("demo.second", "deny")]


@pytest.fixture
async def in_gateway(tmp_path):
    """(runner, sessions, reader) wired as the gateway wires them: session actors over an
    event store, the one sink, a reader on the same file."""
    store = EventStore.open(tmp_path / "actors.db")
    sessions = Sessions.start(store)
    reader = SqliteRecorder(tmp_path / "actors.db")
    runner = ToolRunner(ToolRegistry(TOOLS), PolicySettings(workspace_root=tmp_path),
                        store=store, recorder=reader,
                        sink=StoreSessionSink(store, sessions, source="admin"))
    yield runner, sessions, reader
    reader.close()
    await sessions.aclose()
    await store.aclose()


async def _begin(sessions, session_id):
    return await sessions.begin_turn(session_id, TurnRequest(request_id="r1", model="m",
                                                             stream=False))


async def test_events_of_a_turn_are_recorded_through_the_session_actor(in_gateway):
    """With a turn, events go through `Sessions.record` into the session actor's open
    turn."""
    runner, sessions, reader = in_gateway
    turn = await _begin(sessions, "a1")
    result = await runner.call("double", {"n": 2}, session_id="a1", turn=turn)
    assert result.ok
    state = await sessions.state("a1")
    assert state.policy_decisions == 1
    assert state.tool_results == 1
    recorded = [r.event for r in reader.read_stream("session-a1")]
    assert [getattr(e, "turn", None) for e in recorded[-2:]] == [turn, turn]


async def test_caller_is_named_on_decisions_and_start(runner, store):
    """`caller` lands on every PolicyDecided and on ToolCallStarted."""
    await runner.call("two_step", {"n": 1}, session_id="s", caller="cli:alice")
    recorded = [e for e in events(store) if isinstance(e, (PolicyDecided, ToolCallStarted))]
    assert [type(e).__name__ for e in recorded] == [
        "PolicyDecided", "ToolCallStarted", "PolicyDecided", "PolicyDecided"]
    assert {e.caller for e in recorded} == {"cli:alice"}


async def test_caller_defaults_to_the_session(runner, store):
    """Without `caller`, the agent loop's "session" is recorded."""
    await runner.call("double", {"n": 1}, session_id="s")
    assert {e.caller for e in events(store)
            if isinstance(e, (PolicyDecided, ToolCallStarted))} == {"session"}


async def test_call_without_an_id_gets_one_on_all_its_events(runner, store):
    """A call with no tool_use id is given one, so its events can be matched."""
    result = await runner.call("double", {"n": 1}, session_id="s")
    assert result.tool_call_id is not None
    assert result.tool_call_id.startswith("lynkr_")
    assert {getattr(e, "tool_call_id", None) for e in events(store)[1:]} == {
        result.tool_call_id}


async def test_denied_call_never_starts(runner, store):
    """A deny records no ToolCallStarted: the handler never ran."""
    await runner.call("even_only", {"n": 3}, session_id="s")
    assert not [e for e in events(store) if isinstance(e, ToolCallStarted)]


async def test_large_result_is_truncated_with_a_note(store, event_store, tmp_path):
    """A result over TOOL_RESULT_MAX_BYTES reaches the caller cut, with a note, and the
    log keeps what the caller got."""
    settings = PolicySettings(workspace_root=tmp_path, result_max_bytes=2048)
    runner = ToolRunner(ToolRegistry(TOOLS), settings, store=event_store, recorder=store)
    result = await runner.call("big", {"n": 5000}, session_id="s")
    assert result.ok
    assert result.truncated_from == 10_000
    text = result.text()
    assert len(text.encode()) <= 2048
    assert text.startswith("é" * 100)
    assert "truncated" in text
    assert "it was 10000 bytes" in text
    assert "TOOL_RESULT_MAX_BYTES=2048" in text
    completed = next(e for e in events(store) if isinstance(e, ToolCompleted))
    assert store.load_blob(completed.result) == text


async def test_result_within_the_limit_is_untouched(runner):
    """A small result keeps its JSON content and no truncation mark."""
    result = await runner.call("big", {"n": 10}, session_id="s")
    assert (result.content, result.truncated_from) == ("é" * 10, None)


async def _cancel_while_running(runner, tool, **kwargs):
    """Start `tool`, cancel the task once its handler runs; the Cancelled must propagate."""
    slow_started.__init__()  # a fresh trio.Event for this test
    reached_after = False
    async with trio.open_nursery() as nursery:
        async def call():
            nonlocal reached_after
            await runner.call(tool, {"n": 30}, session_id="s", tool_call_id="toolu_c",
                              turn=None, **kwargs)
            reached_after = True

        nursery.start_soon(call)
        await slow_started.wait()
        nursery.cancel_scope.cancel()
    assert not reached_after


async def test_cancelled_call_is_recorded_as_interrupted(runner, store):
    """Cancelling the task mid-call appends ToolCallInterrupted (with the effects flag)
    instead of ToolCompleted, and the cancellation propagates."""
    await _cancel_while_running(runner, "slow")
    recorded = events(store)
    assert not [e for e in recorded if isinstance(e, ToolCompleted)]
    interrupted = recorded[-1]
    assert isinstance(interrupted, ToolCallInterrupted)
    assert (interrupted.tool, interrupted.reason, interrupted.effects_possible,
            interrupted.tool_call_id) == ("slow", "cancelled", True, "toolu_c")


async def test_client_disconnect_reason_and_read_only_tool(runner, store):
    """The caller's `cancel_reason` is the recorded reason; a tool without effects says
    none were possible."""
    await _cancel_while_running(runner, "slow_reader", cancel_reason="client_disconnected")
    interrupted = events(store)[-1]
    assert isinstance(interrupted, ToolCallInterrupted)
    assert (interrupted.reason, interrupted.effects_possible) == ("client_disconnected", False)


async def test_interrupt_is_recorded_through_the_session_actor(in_gateway):
    """Within a turn, the interrupt goes through `Sessions.record` and the turn shows it."""
    runner, sessions, _ = in_gateway
    turn = await _begin(sessions, "a2")
    slow_started.__init__()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: runner.call("slow", {"n": 30}, session_id="a2",
                                               tool_call_id="toolu_x", turn=turn))
        await slow_started.wait()
        nursery.cancel_scope.cancel()
    state = await sessions.state("a2")
    (call,) = state.turn(turn).tool_calls
    assert (call.tool_call_id, call.status, call.effects_possible) == (
        "toolu_x", "interrupted", True)


class _RefusingInterrupts(StoreSessionSink):
    """Records everything but `ToolCallInterrupted` (a store that broke at that moment)."""

    async def record(self, session_id, events, *, blobs=(), turn=None):
        if any(isinstance(e, ToolCallInterrupted) for e in events):
            raise OSError("disk gone")
        await super().record(session_id, events, blobs=blobs, turn=turn)


async def test_failed_interrupt_record_does_not_replace_the_cancellation(store, event_store,
                                                                         tmp_path):
    """If the interrupt cannot be recorded, that is logged and the Cancelled still goes on."""
    runner = ToolRunner(ToolRegistry(TOOLS), PolicySettings(workspace_root=tmp_path),
                        store=event_store, recorder=store,
                        sink=_RefusingInterrupts(event_store))
    with capture_logs() as logs:
        await _cancel_while_running(runner, "slow")
    assert "tool_interrupt_not_recorded" in [e["event"] for e in logs]
    assert isinstance(events(store)[-1], ToolCallStarted)  # left for recovery to close
