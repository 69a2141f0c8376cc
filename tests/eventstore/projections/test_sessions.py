"""The sessions projection: counts and activity per session."""

from __future__ import annotations

from pathlib import Path

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import MemoryRecorder
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.sessions import session_rows
from tests.eventstore.projections.sample_log import write_sample_log


def test_sessions_count_events_turns_and_failures(tmp_path: Path) -> None:
    """Each session row counts its events, turns and failed turns; system streams are ignored."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    store.catch_up(recorder)
    rows = {r["session_id"]: r for r in session_rows(store)}
    assert set(rows) == {"a", "b"}
    assert (rows["a"]["events"], rows["a"]["turns"], rows["a"]["failures"]) == (8, 2, 0)
    assert (rows["b"]["events"], rows["b"]["turns"], rows["b"]["failures"]) == (5, 2, 2)
    assert rows["a"]["client"] == "claude-cli/2.1"
    assert rows["a"]["version"] == recorder.stream_version("session-a")
    assert rows["a"]["first_at"] <= rows["a"]["last_at"]
    assert session_rows(store)[0]["session_id"] == "b"  # most recent first
    store.close()
