"""The usage projection: per day, key, user, model and provider — requests, tokens, tool
calls, errors and latency."""

from __future__ import annotations

from pathlib import Path

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import MemoryRecorder, Metadata
from eventstore.events.gateway import KeyCreated
from eventstore.events.session import ToolCompleted
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.usage import (
    day_of,
    query_usage,
    usage_by_day_and_key,
    usage_by_model,
)
from tests.eventstore.projections.sample_log import respond, start_turn, write_sample_log


def catch_up(recorder: MemoryRecorder, tmp_path: Path) -> ProjectionStore:
    """A projection store caught up with `recorder`."""
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    store.catch_up(recorder)
    return store


def test_usage_is_summed_per_day_and_key(tmp_path: Path) -> None:
    """Responded turns add their tokens under the request's key; failed turns count as
    requests and errors with no tokens."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    start_turn(recorder, "c", 1, "hi", None)
    respond(recorder, "c", 1, "hello", [])
    store = catch_up(recorder, tmp_path)
    rows = {r["key"]: r for r in usage_by_day_and_key(store)}
    assert (rows["key-1"]["requests"], rows["key-1"]["input_tokens"],
            rows["key-1"]["errors"]) == (2, 300, 0)
    assert (rows["anonymous"]["requests"], rows["anonymous"]["input_tokens"],
            rows["anonymous"]["errors"]) == (3, 100, 2)
    assert rows["key-1"]["day"] == day_of(recorder.read_stream("session-a")[-1].recorded_at)
    store.close()


def test_usage_per_model_uses_the_routed_backend_model(tmp_path: Path) -> None:
    """The model is the backend model the turn was routed to; latency is summed."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    store = catch_up(recorder, tmp_path)
    by_model = {r["model"]: r for r in usage_by_model(store)}
    assert (by_model["gpt-backend"]["requests"], by_model["gpt-backend"]["output_tokens"],
            by_model["gpt-backend"]["latency_ms"]) == (2, 14, 500.0)
    assert by_model["claude-sonnet"]["errors"] == 2  # failed before any route was recorded
    store.close()


def test_tool_calls_count_answer_tool_uses_and_server_tools(tmp_path: Path) -> None:
    """Client tool_use blocks of the answer plus the server tools the turn ran."""
    recorder = MemoryRecorder()
    start_turn(recorder, "t", 1, "go", "key-9")
    ref, data = recorder.blob({"ok": True})
    recorder.append("session-t", recorder.stream_version("session-t"), [
        ToolCompleted(tool="fs_read", ok=True, result=ref, duration_ms=1.0, turn=1)],
        blobs=[(ref, data)])
    respond(recorder, "t", 1, "done", ["Bash", "Edit"])
    store = catch_up(recorder, tmp_path)
    assert query_usage(store, by=("key",))[0]["tool_calls"] == 3
    store.close()


def test_user_comes_from_the_key_or_the_jwt_subject(tmp_path: Path) -> None:
    """A key's user is its KeyCreated user; `jwt:<sub>` is user <sub>."""
    recorder = MemoryRecorder()
    recorder.append("gateway", 0, [KeyCreated(
        key_id="lk_1", name="laptop", user="ann", tier="free", scopes=("anthropic-proxy",),
        secret_sha256="00" * 32, prefix="lk-abcde", created_at=0.0)])
    start_turn(recorder, "k", 1, "hi", "lk_1")
    respond(recorder, "k", 1, "hello", [])
    start_turn(recorder, "j", 1, "hi", "jwt:bob")
    respond(recorder, "j", 1, "hello", [])
    store = catch_up(recorder, tmp_path)
    assert [(r["user"], r["requests"]) for r in query_usage(store, by=("user",))] == [
        ("ann", 1), ("bob", 1)]
    assert query_usage(store, by=("key",), user="ann")[0]["key"] == "lk_1"
    store.close()


def test_finished_turns_are_forgotten(tmp_path: Path) -> None:
    """Open-turn bookkeeping is deleted once each turn ends."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    store = catch_up(recorder, tmp_path)
    assert store.query("SELECT * FROM usage_turns") == []
    store.close()


def test_rebuild_gives_the_same_rows(tmp_path: Path) -> None:
    """Dropping the projection and replaying from 0 gives the same rows (exactly once)."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    store = catch_up(recorder, tmp_path)
    before = store.query("SELECT * FROM usage_daily ORDER BY key, model")
    store.catch_up(recorder)
    store.rebuild(recorder, "usage")
    assert store.query("SELECT * FROM usage_daily ORDER BY key, model") == before
    store.close()


def test_day_is_the_utc_date_of_the_event() -> None:
    """Days are UTC dates derived from recorded_at."""
    assert day_of(0.0) == "1970-01-01"
    assert day_of(86_400 * 365.0) == "1971-01-01"


def test_metadata_without_a_key_is_anonymous(tmp_path: Path) -> None:
    """No key_id in the metadata: the key and user are `anonymous`."""
    recorder = MemoryRecorder()
    start_turn(recorder, "n", 1, "hi", None)
    respond(recorder, "n", 1, "hello", [])
    assert Metadata().key_id is None
    store = catch_up(recorder, tmp_path)
    assert [(r["key"], r["user"]) for r in query_usage(store, by=("key", "user"))] == [
        ("anonymous", "anonymous")]
    store.close()
