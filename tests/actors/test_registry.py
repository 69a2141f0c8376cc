"""The session registry: spawn on first use, passivate when idle, restart after a crash."""

from __future__ import annotations

import dataclasses

import pykka
import pytest
import trio
from structlog.testing import capture_logs

from actors import (
    INLINE_REQUEST_BYTES,
    EventStore,
    InvalidSessionIdError,
    SessionActor,
    SessionRegistry,
    Sessions,
    SessionUnavailableError,
    TurnRequest,
)
from actors._dispatch import default_dispatcher
from eventstore import MemoryRecorder, SqliteRecorder, make_blob, verify_log
from eventstore.events.session import ModelResponded, RouteChosen
from eventstore.events.system import ActorCrashed, ActorRestarted
from eventstore.projections.session_state import SessionFoldError


class FragileSession(SessionActor):
    """A session actor with a message that fails, to exercise supervision."""

    def explode(self) -> None:
        raise RuntimeError("boom")


def request(n: int) -> TurnRequest:
    return TurnRequest(request_id=f"req-{n}", model="m", stream=True,
                       messages=[{"role": "user", "content": str(n)}])


@pytest.fixture
def db(tmp_path):
    return tmp_path / "lynkr.db"


@pytest.fixture
def store(db):
    return EventStore.open(db)


async def wait_for(predicate, seconds: float = 5.0) -> None:
    """Poll `predicate` (state held by actor threads, so no trio.Event to wait on)."""
    with trio.fail_after(seconds):
        while not await predicate():  # noqa: ASYNC110  (state lives in actor threads)
            await trio.sleep(0.01)


async def test_first_use_spawns_and_later_uses_reuse_the_actor(store):
    """A session actor is spawned on first use and reused afterwards."""
    sessions = Sessions.start(store)
    assert await sessions.begin_turn("a", request(1)) == 1
    assert await sessions.begin_turn("a", request(2)) == 2
    await sessions.begin_turn("b", request(1))
    stats = await sessions.statistics()
    assert (stats.live, stats.spawned) == (2, 2)


async def test_whole_turn_through_the_trio_helper(store):
    """begin_turn, record, finish_turn and state each take one await."""
    sessions = Sessions.start(store)
    turn = await sessions.begin_turn("a", request(1))
    version = await sessions.record("a", turn, RouteChosen(turn=turn, provider="p",
                                                           backend_model="b", reason="r"))
    ref, data = make_blob({"content": "hi"})
    final = await sessions.finish_turn("a", turn, ModelResponded(
        turn=turn, message=ref, stop_reason="end_turn", usage={}, latency_ms=1.0),
        blobs=[(ref, data)])
    state = await sessions.state("a")
    assert (version, final.status, state.version) == (3, "responded", 4)


async def test_idle_session_is_passivated_and_recovered_transparently(store):
    """After the idle timeout the actor stops; the next use recovers the same state."""
    sessions = Sessions.start(store, idle_timeout=0.1, tick=0.02)
    await sessions.begin_turn("a", request(1))
    before = await sessions.state("a")

    async def passivated() -> bool:
        return (await sessions.statistics()).passivated == 1

    await wait_for(passivated)
    assert (await sessions.statistics()).live == 0
    assert await sessions.state("a") == before
    assert (await sessions.statistics()).spawned == 2


async def test_a_session_in_use_is_not_passivated(store):
    """Calls through the cached proxy reset the idle clock: a busy session stays live."""
    # 1.2 s of calls 0.04 s apart against a 0.8 s idle timeout: only a stall of ~0.75 s
    # (far beyond a loaded machine's hiccups) could passivate it.
    sessions = Sessions.start(store, idle_timeout=0.8, tick=0.02)
    await sessions.begin_turn("a", request(1))
    for _ in range(30):
        await trio.sleep(0.04)
        await sessions.state("a")
    stats = await sessions.statistics()
    assert (stats.passivated, stats.spawned) == (0, 1)


async def test_crashed_session_is_restarted_with_its_committed_state(db, store):
    """A session actor that raises in a tell is restarted; its state is intact; crash logged."""
    sessions = Sessions.start(store, actor_class=FragileSession)
    await sessions.begin_turn("a", request(1))
    await sessions.begin_turn("a", request(2))
    before = await sessions.state("a")
    proxy = await sessions.actor("a")
    proxy.explode.defer()

    async def restarted() -> bool:
        return (await sessions.statistics()).restarted == 1

    await wait_for(restarted)
    assert await sessions.state("a") == before
    assert not proxy.actor_ref.is_alive()
    recorder = SqliteRecorder(db)
    try:
        crash, restart = (r.event for r in recorder.read_stream("system"))
    finally:
        recorder.close()
    assert crash == ActorCrashed(actor="session:a", error_type="RuntimeError", error="boom")
    assert restart == ActorRestarted(actor="session:a", recovered_version=before.version)


async def test_session_stopped_between_lookup_and_call_is_looked_up_again(store):
    """If the actor stops after lookup (passivation race), the helper retries once."""
    sessions = Sessions.start(store)
    await sessions.begin_turn("a", request(1))
    calls = 0

    def stop_then_ask(proxy):
        nonlocal calls
        calls += 1
        if calls == 1:
            proxy.actor_ref.stop()
        return proxy.state()

    state = await sessions.call("a", stop_then_ask)
    assert (calls, state.version) == (2, 2)


async def test_session_stopped_twice_is_unavailable(store):
    """If the actor stops again after the second lookup, the helper gives up clearly."""
    sessions = Sessions.start(store)

    def always_stop(proxy):
        proxy.actor_ref.stop()
        return proxy.state()

    with pytest.raises(SessionUnavailableError, match="stopped twice"):
        await sessions.call("a", always_stop)


async def test_stopped_registry_makes_sessions_unavailable(store):
    """Once the registry is stopped, calls fail with SessionUnavailableError."""
    sessions = Sessions.start(store)
    await sessions.aclose()
    with pytest.raises(SessionUnavailableError, match="registry is stopped"):
        await sessions.state("a")


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "tab\there", "nl\n"])
async def test_invalid_session_ids_are_refused(store, bad):
    """Ids that cannot name a stream raise InvalidSessionIdError."""
    sessions = Sessions.start(store)
    with pytest.raises(InvalidSessionIdError):
        await sessions.state(bad)


async def test_stopping_the_registry_stops_its_sessions(store):
    """Stopping the registry stops every session actor it owns before it returns."""
    sessions = Sessions.start(store)
    await sessions.begin_turn("a", request(1))
    proxy = await sessions.actor("a")
    await sessions.aclose()
    assert not proxy.actor_ref.is_alive()


async def test_crash_of_an_unfoldable_session_is_recorded_without_restart(db, store):
    """If the stream cannot be folded, the crash is recorded and the fold error reaches callers."""
    sessions = Sessions.start(store, actor_class=FragileSession)
    await sessions.begin_turn("a", request(1))
    other = SqliteRecorder(db)
    try:
        other.append("session-a", 2, [ActorCrashed(actor="x", error_type="E", error="e")])
    finally:
        other.close()
    with capture_logs() as logs:
        (await sessions.actor("a")).explode.defer()

        async def gave_up() -> bool:
            return any(e["event"] == "session_restart_failed" for e in logs)

        await wait_for(gave_up)
    assert (await sessions.statistics()).restarted == 0
    assert [r.event.type_name for r in await store.read_stream("system")] == ["ActorCrashed"]
    with pytest.raises(SessionFoldError, match="does not belong"):
        await sessions.state("a")


def test_idle_timeout_must_be_positive(store):
    """A zero or negative idle timeout is a clear error at start."""
    with pytest.raises(ValueError, match="idle_timeout must be positive"):
        Sessions.start(store, idle_timeout=0)


async def test_registry_survives_an_unexpected_message(store):
    """A stray message is logged and ignored; the registry keeps serving."""
    sessions = Sessions.start(store)
    with capture_logs() as logs:
        sessions.ref.tell("stray")
        assert await sessions.state("a") is None
    assert {"event": "registry_unexpected_message", "message_type": "str",
            "log_level": "warning"} in logs


async def test_concurrent_turns_on_shared_sessions_stay_consistent(db, store):
    """40 trio tasks running whole turns on 4 shared sessions: unique turns, intact log."""
    sessions = Sessions.start(store)
    ref, data = make_blob({"content": "ok"})

    async def run_turn(task: int) -> None:
        session_id = f"s{task % 4}"
        turn = await sessions.begin_turn(session_id, request(task))
        await sessions.record(session_id, turn, RouteChosen(turn=turn, provider="p",
                                                            backend_model="b", reason="r"))
        await sessions.finish_turn(session_id, turn, ModelResponded(
            turn=turn, message=ref, stop_reason="end_turn", usage={"output_tokens": 1},
            latency_ms=1.0), blobs=[(ref, data)])

    async with trio.open_nursery() as nursery:
        for task in range(40):
            nursery.start_soon(run_turn, task)
    for n in range(4):
        state = await sessions.state(f"s{n}")
        assert [t.number for t in state.turns] == list(range(1, 11))
        assert {t.status for t in state.turns} == {"responded"}
        assert state.usage["output_tokens"] == 10
    recorder = SqliteRecorder(db)
    try:
        assert all(damage is None for _, _, damage in verify_log(recorder))
        assert recorder.last_position() == 4 + 40 * 3
    finally:
        recorder.close()


async def test_a_busy_session_touches_the_registry_once_per_interval(store, monkeypatch):
    """Commands within the touch interval send no SessionTouched; the idle clock still runs."""
    sessions = Sessions.start(store, idle_timeout=600.0)
    touches = []
    tell = sessions.ref.tell
    monkeypatch.setattr(sessions.ref, "tell", lambda m: touches.append(m) or tell(m))
    try:
        for n in (1, 2, 3):
            await sessions.begin_turn("busy", request(n))
        assert touches == []  # the first lookup reset the clock; 1 s has not passed
        state = await sessions.state("busy")
        assert len(state.turns) == 3
    finally:
        await sessions.aclose()


async def test_a_zero_touch_interval_touches_on_every_command(store, monkeypatch):
    """With touch_interval=0 every command on a cached session tells the registry."""
    sessions = Sessions(SessionRegistry.start(store), touch_interval=0.0)
    touches = []
    tell = sessions.ref.tell
    monkeypatch.setattr(sessions.ref, "tell", lambda m: touches.append(m) or tell(m))
    try:
        for n in (1, 2):
            await sessions.begin_turn("busy", request(n))
        assert [type(t).__name__ for t in touches] == ["SessionTouched"]
    finally:
        await sessions.aclose()


def inline_runs() -> int:
    """Messages the session actors' dispatcher has run inline so far."""
    return default_dispatcher().statistics().inline


async def one_turn(sessions: Sessions, session_id: str, n: int) -> None:
    """begin_turn, record and finish_turn of one turn."""
    turn = await sessions.begin_turn(session_id, request(n))
    await sessions.record(session_id, turn, RouteChosen(turn=turn, provider="p",
                                                        backend_model="b", reason="r"))
    ref, data = make_blob({"content": "ok"})
    await sessions.finish_turn(session_id, turn, ModelResponded(
        turn=turn, message=ref, stop_reason="end_turn", usage={}, latency_ms=1.0),
        blobs=[(ref, data)])


async def test_a_lone_command_runs_inline_and_commits_as_a_worker_would(db, store):
    """With nothing else in flight, every command after recovery runs inline; the
    stream, the fold and the hash chain are what they are through the workers."""
    sessions = Sessions.start(store)
    await sessions.begin_turn("a", request(0))  # the first message recovers: a worker
    before = inline_runs()
    for n in range(1, 4):
        await one_turn(sessions, "a", n)
    assert inline_runs() == before + 9
    state = await sessions.state("a")
    assert [t.status for t in state.turns] == ["open", "responded", "responded", "responded"]
    assert state.version == 2 + 3 * 3
    recorder = SqliteRecorder(db)
    try:
        assert all(damage is None for _, _, damage in verify_log(recorder))
        assert [r.seq for r in recorder.read_stream("session-a")] == list(range(1, 12))
    finally:
        recorder.close()


async def test_commands_in_flight_together_go_to_the_workers(db, store):
    """16 sessions busy at once: the workers take the commands (and batch their commits)."""
    sessions = Sessions.start(store)
    for n in range(16):
        await sessions.begin_turn(f"c{n}", request(0))
    before = inline_runs()
    async with trio.open_nursery() as nursery:
        for n in range(16):
            for turn in range(1, 6):
                nursery.start_soon(one_turn, sessions, f"c{n % 16}", 100 * n + turn)
    assert inline_runs() - before < 24  # of 240 (measured: 1, the first ask of all)
    for n in range(16):
        state = await sessions.state(f"c{n}")
        assert [t.number for t in state.turns] == list(range(1, 7))


async def test_a_request_too_large_to_hash_on_trio_begins_on_a_worker(store):
    """A `BeginTurn` over INLINE_REQUEST_BYTES runs on a worker; the next command inline."""
    sessions = Sessions.start(store)
    await sessions.begin_turn("big", request(0))
    before = inline_runs()
    large = dataclasses.replace(request(1), request_bytes=INLINE_REQUEST_BYTES + 1)
    turn = await sessions.begin_turn("big", large)
    assert inline_runs() == before
    await sessions.record("big", turn, RouteChosen(turn=turn, provider="p", backend_model="b",
                                                   reason="r"))
    assert inline_runs() == before + 1


async def test_sessions_over_a_store_that_waits_never_run_inline():
    """A store without direct submission (the in-memory one) would block trio: workers."""
    store = EventStore.start(MemoryRecorder())
    sessions = Sessions.start(store)
    await sessions.begin_turn("m", request(0))
    before = inline_runs()
    await one_turn(sessions, "m", 1)
    assert inline_runs() == before
    assert (await sessions.state("m")).version == 5


async def test_an_inline_command_that_conflicts_is_retried_on_a_worker(db, store):
    """Another process appended meanwhile: the inline commit is refused, the actor
    catches up and retries on a worker, and the caller gets the retried answer."""
    sessions = Sessions.start(store)
    await sessions.begin_turn("x", request(1))
    other = SqliteRecorder(db)
    try:
        other.append("session-x", 2, [RouteChosen(turn=1, provider="cli", backend_model="b",
                                                  reason="elsewhere")])
    finally:
        other.close()
    before = inline_runs()
    with capture_logs() as logs:
        version = await sessions.record("x", 1, RouteChosen(turn=1, provider="p",
                                                            backend_model="b", reason="r"))
    assert inline_runs() == before + 1  # it ran inline; the retry did not
    assert [e["event"] for e in logs].count("session_conflict_retried") == 1
    assert version == 4
    state = await sessions.state("x")
    assert state.version == 4


async def test_inline_asks_can_be_turned_off(store):
    """`inline=False`: every command goes to the workers, with the same answers."""
    sessions = Sessions.start(store, inline=False)
    await sessions.begin_turn("w", request(0))
    before = inline_runs()
    await one_turn(sessions, "w", 1)
    assert inline_runs() == before
    assert (await sessions.state("w")).version == 5


async def test_inline_commands_under_full_durability_commit_on_the_writer(db):
    """FULL syncs every commit to disk: the command runs inline, its commit on the
    writer thread, and the answer still arrives after it."""
    store = EventStore.open(db, durability="FULL")
    sessions = Sessions.start(store)
    await sessions.begin_turn("f", request(0))
    batches = (await store.statistics()).batches
    before = inline_runs()
    await one_turn(sessions, "f", 1)
    assert inline_runs() == before + 3
    assert (await store.statistics()).batches == batches + 3
    assert (await sessions.state("f")).version == 5


async def test_beyond_max_live_the_least_recently_used_session_is_passivated(store):
    """Past the cap the session unused the longest stops; a recently used one stays."""
    sessions = Sessions.start(store, max_live=3)
    for name in ("a", "b", "c"):
        await sessions.begin_turn(name, request(1))
    await sessions.begin_turn("a", request(2))  # "b" is now the least recently used
    b = await sessions.actor("b")
    await sessions.begin_turn("a", request(3))
    await sessions.begin_turn("d", request(1))  # one too many: "c" goes
    stats = await sessions.statistics()
    assert (stats.live, stats.passivated) == (3, 1)
    assert b.actor_ref.is_alive()
    assert await sessions.ref.proxy().live_sessions() == ("a", "b", "d")


async def test_many_sessions_stay_within_the_cap_and_recover_from_their_events(db, store):
    """2,000 sessions through a cap of 50: never more live; each passivated one comes back
    with its committed turns, and none of them is listed in pykka's global registry."""
    sessions = Sessions.start(store, max_live=50)
    for n in range(2000):
        await one_turn(sessions, f"s{n}", n)
    stats = await sessions.statistics()
    assert (stats.live, stats.spawned, stats.passivated) == (50, 2000, 1950)
    assert not [r for r in pykka.ActorRegistry.get_all()
                if isinstance(r, pykka.ActorRef) and issubclass(r.actor_class, SessionActor)]
    state = await sessions.state("s7")  # passivated long ago: recovered from its stream
    assert [(t.number, t.status) for t in state.turns] == [(1, "responded")]
    assert state.version == 4
    assert (await sessions.statistics()).live == 50


async def test_a_passivated_session_continues_where_it_left_off(store):
    """Turns after an LRU passivation continue the stream: numbers and versions follow on."""
    sessions = Sessions.start(store, max_live=1)
    await one_turn(sessions, "x", 1)
    await one_turn(sessions, "y", 1)  # passivates "x"
    await one_turn(sessions, "x", 2)
    state = await sessions.state("x")
    assert [t.number for t in state.turns] == [1, 2]
    assert (await sessions.statistics()).passivated >= 2


def test_max_live_must_be_positive(store):
    """A cap below one is a clear error at start."""
    with pytest.raises(ValueError, match="max_live must be at least 1"):
        Sessions.start(store, max_live=0)
