"""`BlobCache`: a session skips re-encoding request parts it has stored already."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import EventStore, SessionActor, TurnRequest
from actors import _blob_cache as blob_cache
from actors._blob_cache import BlobCache
from eventstore import SqliteRecorder, make_blob
from eventstore.events.session import ModelResponded, TurnStarted

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_a_part_stored_before_comes_back_without_bytes():
    """Second sight of a stored part: the same ref, no bytes, counted as a hit."""
    stored: set[bytes] = set()
    cache = BlobCache(stored)
    part = {"type": "text", "text": "You are Claude Code. " * 100}
    ref, data = cache.make(part)
    assert (ref, data) == make_blob(part)
    stored.add(ref.digest)
    assert cache.make(dict(part)) == (ref, b"")
    assert cache.hits == 1


def test_a_part_not_yet_stored_is_encoded_again():
    """A known key whose blob is not committed yet still gets its bytes."""
    cache = BlobCache(set())
    part = ["tool list"]
    assert cache.make(part) == make_blob(part)
    assert cache.make(part) == make_blob(part)
    assert cache.hits == 0


@given(JSON, JSON)
def test_a_hit_is_never_another_value(first, second):
    """Whatever two values are made in a row, each gets the ref `make_blob` gives it."""
    stored: set[bytes] = set()
    cache = BlobCache(stored)
    stored.add(cache.make(first)[0].digest)
    assert cache.make(second)[0] == make_blob(second)[0]


def test_true_one_and_one_point_zero_are_three_blobs():
    """Values Python calls equal but the log stores differently do not share a blob."""
    stored: set[bytes] = set()
    cache = BlobCache(stored)
    refs = []
    for value in ({"a": True}, {"a": 1}, {"a": 1.0}):
        ref, _ = cache.make(value)
        stored.add(ref.digest)
        refs.append(ref)
    assert len(set(refs)) == 3
    assert refs == [make_blob(v)[0] for v in ({"a": True}, {"a": 1}, {"a": 1.0})]


def test_what_marshal_cannot_take_goes_to_make_blob():
    """No shortcut for a value marshal refuses; make_blob's own error stands."""
    cache = BlobCache(set())
    with pytest.raises(TypeError):
        cache.make({"a": object()})


def test_the_cache_is_bounded():
    """Past `limit` keys it starts again; answers stay right."""
    stored: set[bytes] = set()
    cache = BlobCache(stored, limit=2)
    for n in range(5):
        ref, _ = cache.make([n])
        stored.add(ref.digest)
    assert cache.make([4]) == (make_blob([4])[0], b"")
    assert cache.make([0]) == make_blob([0])
    with pytest.raises(ValueError, match="at least 1"):
        BlobCache(stored, limit=0)


async def test_a_session_stores_a_resent_system_prompt_once(tmp_path, monkeypatch):
    """Turn two resends turn one's parts: the session skips encoding them, and both turns
    refer to the same stored blobs, which read back as sent."""
    encoded = []
    monkeypatch.setattr(blob_cache, "make_blob", lambda v: encoded.append(v) or make_blob(v))
    store = EventStore.open(tmp_path / "lynkr.db")
    ref = SessionActor.start("s", store)
    system = [{"type": "text", "text": "You are Claude Code. " * 300}]
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    history = [{"role": "user", "content": "q1"}]
    for n in (1, 2):
        request = TurnRequest(request_id=f"r{n}", model="m", stream=False, system=system,
                              tools=tools, messages=history)
        assert await ref.proxy().begin_turn(request) == n
        history = [*history, {"role": "assistant", "content": f"a{n}"},
                   {"role": "user", "content": f"q{n + 1}"}]
    # turn 1: system block, tool list, q1; turn 2 only what is new: a1 and q2
    assert encoded == [system[0], *history[:1], tools, *history[1:3]]
    started = [r.event for r in await store.read_stream("session-s")
               if isinstance(r.event, TurnStarted)]
    first, second = started
    assert (second.system, second.tools) == (first.system, first.tools)
    assert second.messages[0] == first.messages[0]
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        assert recorder.load_blob(second.system[0]) == system[0]
        assert recorder.load_blob(second.tools) == tuple(tools)  # arrays decode as tuples
    finally:
        recorder.close()


def test_fit_grows_the_limit_to_twice_a_request_up_to_the_ceiling():
    """`fit(n)` makes room for 2n keys; it never shrinks, and stops at MAX_LIMIT."""
    cache = BlobCache(set(), limit=10)
    cache.fit(3)
    assert cache.limit == 10
    cache.fit(40)
    assert cache.limit == 80
    cache.fit(5)
    assert cache.limit == 80
    cache.fit(10**9)
    assert cache.limit == blob_cache.MAX_LIMIT


async def answer(ref, turn: int) -> None:
    """Finish `turn` with a one-line answer (its own blob)."""
    message = make_blob({"role": "assistant", "content": f"answer {turn}"})
    await ref.proxy().finish_turn(turn, ModelResponded(
        turn=turn, message=message[0], stop_reason="end_turn", usage={}, latency_ms=1.0),
        blobs=[message])


async def test_a_session_longer_than_the_first_limit_encodes_only_what_is_new(
        tmp_path, monkeypatch):
    """A history of 5,000 messages (over the initial 4,096 keys), each turn answered and
    then resent with 2 more: each later turn encodes only its 2 new messages."""
    encoded = []
    monkeypatch.setattr(blob_cache, "make_blob", lambda v: encoded.append(v) or make_blob(v))
    store = EventStore.open(tmp_path / "lynkr.db")
    ref = SessionActor.start("long", store)
    history = [{"role": "user", "content": f"m{n}"} for n in range(5000)]
    first = TurnRequest(request_id="r1", model="m", stream=False, messages=history)
    assert await ref.proxy().begin_turn(first) == 1
    await answer(ref, 1)
    encoded.clear()
    longer = [*history, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]
    for turn in (2, 3):
        request = TurnRequest(request_id=f"r{turn}", model="m", stream=False, messages=longer)
        assert await ref.proxy().begin_turn(request) == turn
        assert encoded == longer[-2:]
        await answer(ref, turn)
        encoded.clear()
        longer = [*longer, {"role": "assistant", "content": f"a{turn}"},
                  {"role": "user", "content": f"q{turn}"}]
