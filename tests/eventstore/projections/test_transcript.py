"""The transcript projection: one readable row per turn, from a real log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import SqliteRecorder, make_blob
from eventstore.events.session import (
    LoopStepResponded,
    SessionStarted,
    ToolCallStarted,
    ToolCompleted,
    TurnStarted,
)
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.transcript import (
    PROJECTION,
    assistant_parts,
    preview,
    transcript_events,
    transcript_rows,
    user_text,
)
from tests.eventstore.projections.loop_log import write_loop_session
from tests.eventstore.projections.sample_log import write_sample_log


@pytest.fixture
def store(tmp_path: Path):
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    write_sample_log(recorder)
    projections = ProjectionStore(tmp_path / "projections.db", all_projections())
    projections.catch_up(recorder)
    yield projections
    projections.close()
    recorder.close()


def test_answered_turn_has_texts_tools_and_usage(store: ProjectionStore) -> None:
    """A responded turn shows the user's latest text, the answer, tool names and usage."""
    first = transcript_rows(store, "a")[0]
    assert first["user_text"] == "list the files"
    assert first["assistant_text"] == "Let me look."
    assert first["tool_uses"] == "Bash,Read"
    assert first["stop_reason"] == "tool_use"
    assert (first["input_tokens"], first["output_tokens"]) == (100, 7)
    assert first["status"] == "ok"
    assert first["model"] == "claude-sonnet"
    assert first["latency_ms"] == 250.0


def test_turns_are_in_order(store: ProjectionStore) -> None:
    """Rows come back by turn number."""
    assert [r["turn"] for r in transcript_rows(store, "a")] == [1, 2]


def test_failed_and_aborted_turns_carry_their_status(store: ProjectionStore) -> None:
    """UpstreamFailed makes a failed turn, StreamAborted an aborted one, with the reason."""
    failed, aborted = transcript_rows(store, "b")
    assert failed["status"] == "failed"
    assert "upstream down" in failed["error"]
    assert aborted["status"] == "aborted"
    assert "without a finish reason" in aborted["error"]


def test_unknown_session_has_no_rows(store: ProjectionStore) -> None:
    """A session that never existed has an empty transcript."""
    assert transcript_rows(store, "zzz") == []


def test_user_text_skips_tool_results() -> None:
    """The latest user text is the last user message that has text."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]
    assert user_text(messages) == "hi"
    assert user_text([]) == ""


def test_assistant_parts_of_odd_values_are_empty() -> None:
    """Non-message values give no text and no tools instead of crashing."""
    assert assistant_parts(None) == ("", ())
    assert assistant_parts({"content": "plain"}) == ("plain", ())


class _CountingRecorder:
    """A recorder whose blob loads are counted (everything else passes through)."""

    def __init__(self, recorder: SqliteRecorder) -> None:
        self._recorder = recorder
        self.loads = 0

    def load_blob(self, ref: Any) -> Any:
        self.loads += 1
        return self._recorder.load_blob(ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)


def tool_loop(recorder: SqliteRecorder, turns: int, *, rewrite_at: int | None = None) -> None:
    """One session: the user asks once, then `turns` tool round trips, each resending the
    whole history (as Claude Code does); at `rewrite_at` the history is replaced by a
    compacted one whose only user text is "summary"."""
    recorder.append("session-loop", 0, [SessionStarted(session_id="loop", source="header")])
    history = [make_blob({"role": "user", "content": "fix the tests"})]
    for turn in range(1, turns + 1):
        if turn == rewrite_at:
            history = [make_blob({"role": "user", "content": "summary"}),
                       *[make_blob({"role": "assistant", "content": f"note {n}"})
                         for n in range(12)]]
        event = TurnStarted(turn=turn, request_id=f"r{turn}", model="m", stream=False,
                            messages=tuple(ref for ref, _ in history))
        recorder.append("session-loop", recorder.stream_version("session-loop"), [event],
                        blobs=history)
        history = [*history,
                   make_blob({"role": "assistant", "content": [
                       {"type": "tool_use", "id": f"t{turn}", "name": "Bash", "input": {}}]}),
                   make_blob({"role": "user", "content": [
                       {"type": "tool_result", "tool_use_id": f"t{turn}", "content": "ok"}]})]


def test_a_long_tool_loop_loads_only_each_turn_s_new_messages(tmp_path: Path) -> None:
    """Sixty tool round trips: every turn shows the user's one question, and a turn
    loads the two messages added since the previous one, not its whole history."""
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    tool_loop(recorder, 60)
    counting = _CountingRecorder(recorder)
    store = ProjectionStore(tmp_path / "projections.db", [PROJECTION])
    store.catch_up(counting)  # type: ignore[arg-type]
    rows = transcript_rows(store, "loop")
    assert {r["user_text"] for r in rows} == {"fix the tests"}
    assert len(rows) == 60
    assert counting.loads == 1 + 59 * 2
    assert "messages_digest" not in rows[0]
    store.close()
    recorder.close()


def test_a_rewritten_history_is_searched_again(tmp_path: Path) -> None:
    """A compacted history is no extension of the previous one: its own user text."""
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    tool_loop(recorder, 12, rewrite_at=10)
    store = ProjectionStore(tmp_path / "projections.db", [PROJECTION])
    store.catch_up(recorder)
    texts = [r["user_text"] for r in transcript_rows(store, "loop")]
    assert texts == ["fix the tests"] * 9 + ["summary"] * 3
    store.close()
    recorder.close()


# -- what happens inside a turn: agent-loop steps, tool calls, the prompt cache ------------
@pytest.fixture
def loop_store(tmp_path: Path):
    """The projections of the agent-loop sample session (`loop_log`)."""
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    write_loop_session(recorder)
    projections = ProjectionStore(tmp_path / "projections.db", [PROJECTION])
    projections.catch_up(recorder)
    yield projections, recorder
    projections.close()
    recorder.close()


def _by_turn(store: ProjectionStore, turn: int | None) -> list[dict[str, Any]]:
    return [e for e in transcript_events(store, "loop") if e["turn"] == turn]


def test_a_loop_turn_shows_its_step_decision_call_result_and_cache_store(loop_store) -> None:
    """Turn 1's events in log order: the step (text, server call), policy, start, result."""
    store, _ = loop_store
    events = _by_turn(store, 1)
    assert [e["kind"] for e in events] == ["step", "policy", "tool_started", "tool_result",
                                           "cache_stored"]
    step, policy, started, result, stored = events
    assert (step["step"], step["status"], step["text"]) == (1, "tool_use", "I'll create it.")
    assert step["detail"] == 'workspace_task_create({"title":"write docs"})'
    assert (policy["status"], policy["caller"], policy["tool_call_id"]) == (
        "allow", "session", "toolu_1")
    assert started["name"] == "workspace_task_create"
    assert result["status"] == "ok"
    assert json.loads(result["text"]) == {"task_id": "t-1", "title": "write docs"}
    assert stored["name"] == "9" * 12


def test_cache_hits_interrupts_and_calls_outside_turns_are_rows(loop_store) -> None:
    """A cache hit, an interrupted call, a loop-guard stop and a CLI call each have a row."""
    store, _ = loop_store
    assert [e["kind"] for e in _by_turn(store, 2)] == ["cache_hit"]
    interrupted = _by_turn(store, 3)[-1]
    assert (interrupted["kind"], interrupted["status"], interrupted["detail"]) == (
        "tool_interrupted", "gateway_restarted", "effects possible")
    loose = _by_turn(store, None)
    assert [(e["kind"], e["seq"]) for e in loose] == [("loop_stopped", 10), ("policy", 21),
                                                      ("tool_result", 22)]
    assert loose[1]["caller"] == "cli:alice"
    assert loose[2]["text"] == "denied by policy fs.path.confined"


def test_turn_rows_keep_the_seq_they_started_at(loop_store) -> None:
    """`started_seq` places turn-less events between turns."""
    store, _ = loop_store
    assert [r["started_seq"] for r in transcript_rows(store, "loop")] == [2, 11, 14]


def test_event_rows_survive_a_rebuild(loop_store) -> None:
    """Dropping the projection and replaying from 0 gives the same event rows."""
    store, recorder = loop_store
    before = transcript_events(store, "loop")
    store.rebuild(recorder, "transcript")
    assert transcript_events(store, "loop") == before


def test_a_long_loop_loads_one_blob_per_step_and_per_result(tmp_path: Path) -> None:
    """Forty loop steps with a call each: the work per event stays one blob at most."""
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    stream = "session-long"
    user = make_blob({"role": "user", "content": "go"})
    recorder.append(stream, 0, [SessionStarted(session_id="long", source="header"),
                                TurnStarted(turn=1, request_id="r", model="m", stream=False,
                                            messages=(user[0],))], blobs=[user])
    for step in range(1, 41):
        message = make_blob({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"c{step}", "name": "noop", "input": {"n": step}}]})
        result = make_blob({"n": step})
        recorder.append(stream, recorder.stream_version(stream), [
            LoopStepResponded(turn=1, step=step, message=message[0], stop_reason="tool_use",
                              usage={}, latency_ms=1.0),
            ToolCallStarted(tool="noop", inputs_digest="0" * 64, effects=False,
                            tool_call_id=f"c{step}", turn=1),
            ToolCompleted(tool="noop", ok=True, result=result[0], duration_ms=0.1,
                          tool_call_id=f"c{step}", turn=1)], blobs=[message, result])
    counting = _CountingRecorder(recorder)
    store = ProjectionStore(tmp_path / "projections.db", [PROJECTION])
    store.catch_up(counting)  # type: ignore[arg-type]
    assert len(transcript_events(store, "long")) == 120
    assert counting.loads == 1 + 40 * 2
    store.close()
    recorder.close()


@pytest.mark.parametrize(("value", "shown"), [
    ("two\n  lines", "two lines"),
    ({"error": "denied"}, "denied"),
    ({"is_error": False, "content": [{"type": "text", "text": "12:00"}]}, "12:00"),
    ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "a b"),
    ({"n": 1}, '{"n":1}'),
    ("x" * 200, "x" * 160 + "… (200 chars)"),
])
def test_preview_is_one_short_line(value: Any, shown: str) -> None:
    """Results preview as one line: text where there is text, else compact JSON, cut."""
    assert preview(value) == shown


def test_a_tunnelled_call_shows_where_it_was_queued() -> None:
    """`ToolCallQueued` becomes a `tool_queued` row naming the user and the connector."""
    from eventstore.events.session import ToolCallQueued
    from eventstore.projections._transcript_events import event_values

    queued = ToolCallQueued(tool="local_read_file", user="ann", timeout_s=30.0,
                            connector_id=None, tool_call_id="toolu_q", turn=1)
    values = event_values(queued, lambda ref: None)
    assert values is not None
    assert (values["kind"], values["name"], values["status"], values["text"]) == (
        "tool_queued", "local_read_file", "waiting", "ann")
