"""The usage projection: tokens per day per key, and per model."""

from __future__ import annotations

from pathlib import Path

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import MemoryRecorder
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.usage import day_of, usage_by_day_and_key, usage_by_model
from tests.eventstore.projections.sample_log import respond, start_turn, write_sample_log


def catch_up(recorder: MemoryRecorder, tmp_path: Path) -> ProjectionStore:
    """A projection store caught up with `recorder`."""
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    store.catch_up(recorder)
    return store


def test_usage_is_summed_per_day_and_key(tmp_path: Path) -> None:
    """Responded turns add their tokens under the request's key; failed turns add nothing."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    start_turn(recorder, "c", 1, "hi", None)
    respond(recorder, "c", 1, "hello", [])
    store = catch_up(recorder, tmp_path)
    rows = {r["key"]: r for r in usage_by_day_and_key(store)}
    assert (rows["key-1"]["turns"], rows["key-1"]["input_tokens"]) == (2, 300)
    assert (rows["anonymous"]["turns"], rows["anonymous"]["input_tokens"]) == (1, 100)
    assert rows["key-1"]["day"] == day_of(recorder.read_stream("session-a")[-1].recorded_at)
    store.close()


def test_usage_per_model_uses_the_routed_backend_model(tmp_path: Path) -> None:
    """The model is the backend model the turn was routed to."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    store = catch_up(recorder, tmp_path)
    assert [(r["model"], r["turns"], r["output_tokens"]) for r in usage_by_model(store)] == [
        ("gpt-backend", 2, 14)]
    store.close()


def test_finished_turns_are_forgotten(tmp_path: Path) -> None:
    """Open-turn bookkeeping is deleted once each turn ends."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    store = catch_up(recorder, tmp_path)
    assert store.query("SELECT * FROM usage_turns") == []
    store.close()


def test_day_is_the_utc_date_of_the_event() -> None:
    """Days are UTC dates derived from recorded_at."""
    assert day_of(0.0) == "1970-01-01"
    assert day_of(86_400 * 365.0) == "1971-01-01"
