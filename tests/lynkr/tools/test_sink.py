"""`StoreSessionSink`: events of a turn through the session actor, others through the store."""

from __future__ import annotations

import pytest

from actors import EventStore, Sessions, TurnRequest
from eventstore import ConcurrencyError, SqliteRecorder, make_blob
from eventstore.events.session import SessionStarted, ToolCallStarted, ToolCompleted
from lynkr.tools import StoreSessionSink
from lynkr.tools._sink import APPEND_ATTEMPTS


def _started(call_id, *, turn=None):
    return ToolCallStarted(tool="fs_read", inputs_digest="d", effects=False,
                           tool_call_id=call_id, turn=turn, caller="admin:local")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "lynkr.db"


@pytest.fixture
async def store(db):
    started = EventStore.open(db)
    yield started
    await started.aclose()


async def _events(store, session):
    return [r.event for r in await store.read_stream(f"session-{session}")]


class _RacedStore:
    """The store, with another process's writer appending to the stream right after each
    of the first `races` version reads (the race a CLI call runs against a gateway)."""

    def __init__(self, store, db, races):
        self.store = store
        self.other = SqliteRecorder(db)
        self.races = races

    async def stream_version(self, stream_id):
        version = await self.store.stream_version(stream_id)
        if self.races:
            self.races -= 1
            self.other.append(stream_id, version, [_started(f"other_{self.races}")])
        return version

    async def append(self, *args, **kwargs):
        return await self.store.append(*args, **kwargs)


async def test_new_stream_starts_with_session_started_of_the_source(store):
    """Outside a turn, the first append starts the stream with SessionStarted(source)."""
    ref, data = make_blob({"ok": True})
    sink = StoreSessionSink(store, source="admin")
    await sink.record("adm", [_started("c1")])
    await sink.record("adm", [ToolCompleted(tool="fs_read", ok=True, result=ref,
                                            duration_ms=1.0, tool_call_id="c1")],
                      blobs=[(ref, data)])
    first, started, completed = await _events(store, "adm")
    assert isinstance(first, SessionStarted)
    assert (first.session_id, first.source) == ("adm", "admin")
    assert (started.tool_call_id, completed.tool_call_id) == ("c1", "c1")
    assert (await store.statistics()).appends == 2


async def test_lost_race_is_retried_at_the_new_version(store, db):
    """Another writer appending between the version read and the append costs a retry,
    not the call's events."""
    raced = _RacedStore(store, db, races=2)
    try:
        await StoreSessionSink(raced).record("cli-x", [_started("mine")])
    finally:
        raced.other.close()
    ids = [getattr(e, "tool_call_id", None) for e in await _events(store, "cli-x")]
    assert ids == ["other_1", "other_0", "mine"]  # the other writer started the stream


async def test_race_lost_every_time_raises_concurrency_error(store, db):
    """After `APPEND_ATTEMPTS` lost races the conflict reaches the caller."""
    raced = _RacedStore(store, db, races=APPEND_ATTEMPTS)
    try:
        with pytest.raises(ConcurrencyError):
            await StoreSessionSink(raced).record("cli-y", [_started("mine")])
    finally:
        raced.other.close()
    assert "mine" not in [getattr(e, "tool_call_id", None)
                          for e in await _events(store, "cli-y")]


async def test_without_sessions_a_turns_events_are_appended_directly(store):
    """A process without session actors (the CLI) appends even events that name a turn."""
    await StoreSessionSink(store).record("cli-z", [_started("c1", turn=3)], turn=3)
    assert [type(e) for e in await _events(store, "cli-z")] == [SessionStarted,
                                                                ToolCallStarted]


async def test_turnless_events_beside_a_live_session_actor(store):
    """The gateway's sink appends a turn-less call to a session whose actor is live; the
    actor's next event of its open turn still lands after it, and its state sees both."""
    sessions = Sessions.start(store)
    try:
        sink = StoreSessionSink(store, sessions, source="admin")
        turn = await sessions.begin_turn("live", TurnRequest(request_id="r1", model="m",
                                                             stream=False))
        await sink.record("live", [_started("admin_call")])
        await sink.record("live", [_started("loop_call", turn=turn)], turn=turn)
        state = await sessions.state("live")
    finally:
        await sessions.aclose()
    recorded = await _events(store, "live")
    assert [getattr(e, "tool_call_id", None) for e in recorded[-2:]] == ["admin_call",
                                                                         "loop_call"]
    assert [c.tool_call_id for c in state.turn(turn).tool_calls] == ["loop_call"]
