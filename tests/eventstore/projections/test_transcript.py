"""The transcript projection: one readable row per turn, from a real log."""

from __future__ import annotations

from pathlib import Path

import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import SqliteRecorder
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.transcript import assistant_parts, transcript_rows, user_text
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
