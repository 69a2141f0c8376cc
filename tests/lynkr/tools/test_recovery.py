"""Crash recovery: calls a dead gateway left open are closed as interrupted, never re-run."""

from __future__ import annotations

import pytest

from actors import EventStore, Projections, Sessions, TurnRequest
from eventstore import BlobRef, SqliteRecorder
from eventstore.events.session import (
    StreamAborted,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
)
from eventstore.projections import ProjectionStore
from eventstore.projections.open_tool_calls import PROJECTION, open_call_rows
from lynkr.tools import StoreSessionSink, recover_interrupted_calls
from lynkr.tools._recovery import _scan_log

RESULT = BlobRef(b"\x07" * 32, 7)


def started(call_id, *, turn=None, caller="session", tool="fs_write", effects=True):
    return ToolCallStarted(tool=tool, inputs_digest="d", effects=effects, tool_call_id=call_id,
                           turn=turn, caller=caller)


async def _dead_gateway_log(path):
    """What a gateway killed mid-call leaves: s1's turn 1 runs toolu_a (fs_write) after
    toolu_b (fs_read) completed; an admin call and a CLI call are open in s2."""
    store = EventStore.open(path)
    sessions = Sessions.start(store)
    try:
        turn = await sessions.begin_turn("s1", TurnRequest(request_id="r1", model="m",
                                                           stream=False))
        await sessions.record("s1", turn, started("toolu_b", turn=turn, tool="fs_read",
                                                  effects=False))
        await sessions.record("s1", turn, ToolCompleted(tool="fs_read", ok=True, result=RESULT,
                                                        duration_ms=1.0,
                                                        tool_call_id="toolu_b", turn=turn),
                              blobs=[(RESULT, b"\xa0")])
        await sessions.record("s1", turn, started("toolu_a", turn=turn))
        await StoreSessionSink(store, sessions, source="admin").record("s2", [
            started("lynkr_admin", caller="admin:local", tool="workspace_git_commit"),
            started("lynkr_cli", caller="cli:bob", tool="workspace_test_run")])
    finally:
        await sessions.aclose()
        await store.aclose()


@pytest.fixture
async def restarted(tmp_path):
    """A log left by a killed gateway, and the parts of the next one."""
    path = tmp_path / "lynkr.db"
    await _dead_gateway_log(path)
    recorder = SqliteRecorder(path)
    store = EventStore.start(recorder)
    sessions = Sessions.start(store)
    projections = Projections.start(recorder, tmp_path / "projections.db")
    yield recorder, store, sessions, projections
    await projections.aclose()
    await sessions.aclose()
    await store.aclose()


def _events(recorder, session):
    return [r.event for r in recorder.read_stream(f"session-{session}")]


async def test_open_call_in_a_turn_is_interrupted_and_the_turn_aborted(restarted):
    """The open call gets ToolCallInterrupted(gateway_restarted, effects_possible), then
    its turn ends with StreamAborted(gateway_restarted); nothing is re-run."""
    recorder, store, sessions, projections = restarted
    report = await recover_interrupted_calls(sessions, projections, store, recorder)
    assert report.aborted_turns == (("s1", 1),)
    *_, interrupted, aborted = _events(recorder, "s1")
    assert isinstance(interrupted, ToolCallInterrupted)
    assert (interrupted.tool_call_id, interrupted.reason, interrupted.effects_possible,
            interrupted.turn) == ("toolu_a", "gateway_restarted", True, 1)
    assert isinstance(aborted, StreamAborted)
    assert (aborted.turn, aborted.reason) == (1, "gateway_restarted")
    assert sum(isinstance(e, ToolCallStarted) and e.tool_call_id == "toolu_a"
               for e in _events(recorder, "s1")) == 1
    state = await sessions.state("s1")
    turn = state.turn(1)
    assert turn.status == "aborted"
    assert [(c.tool_call_id, c.status) for c in turn.tool_calls] == [
        ("toolu_b", "completed"), ("toolu_a", "interrupted")]


async def test_gateway_call_outside_a_turn_is_closed_and_cli_call_left(restarted):
    """An admin call (in the gateway, no turn) is closed; a `lynkr tool call` process's
    call may still be running and is left alone."""
    recorder, store, sessions, projections = restarted
    report = await recover_interrupted_calls(sessions, projections, store, recorder)
    assert report.left_to_cli == 1
    assert sorted(c.tool_call_id for c in report.interrupted) == ["lynkr_admin", "toolu_a"]
    closing = _events(recorder, "s2")[-1]
    assert isinstance(closing, ToolCallInterrupted)
    assert (closing.tool_call_id, closing.turn, closing.effects_possible) == (
        "lynkr_admin", None, True)
    await projections.catch_up_now()
    rows = await projections.query("SELECT tool_call_id FROM open_tool_calls")
    assert rows == [{"tool_call_id": "lynkr_cli"}]


async def test_second_recovery_finds_nothing(restarted):
    """Recovery is idempotent: a second start closes nothing more."""
    recorder, store, sessions, projections = restarted
    await recover_interrupted_calls(sessions, projections, store, recorder)
    before = recorder.last_position()
    report = await recover_interrupted_calls(sessions, projections, store, recorder)
    assert (report.interrupted, report.aborted_turns) == ((), ())
    assert recorder.last_position() == before


async def test_log_scan_agrees_with_the_projection(tmp_path):
    """The fallback scan of the log finds the same open calls as the projection."""
    path = tmp_path / "lynkr.db"
    await _dead_gateway_log(path)
    recorder = SqliteRecorder(path)
    projections = ProjectionStore(tmp_path / "projections.db", [PROJECTION])
    try:
        projections.catch_up(recorder)
        assert _scan_log(recorder) == open_call_rows(projections)
        assert [r["tool_call_id"] for r in _scan_log(recorder)] == [
            "toolu_a", "lynkr_admin", "lynkr_cli"]
    finally:
        projections.close()
        recorder.close()
