"""The session actor: state is the fold of its stream, replies come after the commit."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import trio
from structlog.testing import capture_logs

import actors._blob_cache as blob_cache
from actors import CommandRejectedError, EventStore, SessionActor, TurnRequest, conflict_retries
from actors._session_commit import as_committed as _as_committed
from actors.session import Record
from eventstore import (
    AppendResult,
    BlobRef,
    ConcurrencyError,
    Metadata,
    PendingAppend,
    SqliteRecorder,
    StoreBrokenError,
    StoreClosedError,
    make_blob,
)
from eventstore.events.session import (
    ModelResponded,
    PolicyDecided,
    RouteChosen,
    SessionStarted,
    ToolCompleted,
    TurnStarted,
)
from eventstore.projections.session_state import SessionFoldError, fold_session

SYSTEM = [{"type": "text", "text": "You are Claude Code. " * 500}]


def request(n: int) -> TurnRequest:
    return TurnRequest(request_id=f"req-{n}", model="claude-sonnet-4", stream=False,
                       system=SYSTEM, tools=[{"name": "Bash"}],
                       messages=[{"role": "user", "content": f"q{m}"} for m in range(n)],
                       source="header")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "lynkr.db"


@pytest.fixture
def store(db):
    return EventStore.open(db)


@pytest.fixture
def session(store):
    return SessionActor.start("s1", store).proxy()


def answer(turn: int) -> tuple[ModelResponded, tuple[BlobRef, bytes]]:
    blob = make_blob({"role": "assistant", "content": [{"type": "text", "text": "hi"}]})
    return ModelResponded(turn=turn, message=blob[0], stop_reason="end_turn",
                          usage={"input_tokens": 3, "output_tokens": 2},
                          latency_ms=5.0), blob


async def test_begin_turn_replies_after_commit(db, session):
    """When begin_turn returns, a fresh recorder on the same file sees the events and blobs."""
    assert await session.begin_turn(request(1)) == 1
    fresh = SqliteRecorder(db)
    try:
        started, turn = (r.event for r in fresh.read_stream("session-s1"))
        assert isinstance(started, SessionStarted)
        assert isinstance(turn, TurnStarted)
        assert fresh.load_blob(turn.system[0]) == SYSTEM[0]
        assert fresh.read_stream("session-s1")[1].metadata.request_id == "req-1"
    finally:
        fresh.close()


async def test_turns_are_numbered_in_order(session):
    """Each begin_turn gets the next turn number; the first also started the session."""
    assert [await session.begin_turn(request(n)) for n in (1, 2, 3)] == [1, 2, 3]
    state = await session.state()
    assert (state.version, len(state.turns), state.open_turns) == (4, 3, (1, 2, 3))


async def test_a_whole_turn_ends_responded_with_usage(db, session):
    """Route, policy, tool result and answer fold into a responded turn with its usage."""
    turn = await session.begin_turn(request(1))
    result = make_blob({"stdout": "ok"})
    await session.record(turn, RouteChosen(turn=turn, provider="ollama", backend_model="qwen",
                                           reason="default"))
    await session.record(turn, PolicyDecided(tool="Bash", policy="fs", rule="r", decision="allow",
                                             reason="r", inputs_digest="d", fields={},
                                             config_hash="c"),
                         ToolCompleted(tool="Bash", ok=True, result=result[0], duration_ms=2),
                         blobs=[result])
    outcome, blob = answer(turn)
    final = await session.finish_turn(turn, outcome, blobs=[blob])
    assert (final.status, final.provider, final.policy_decisions, final.tool_results) == (
        "responded", "ollama", 1, 1)
    state = await session.state()
    assert dict(state.usage) == {"input_tokens": 3, "output_tokens": 2}
    fresh = SqliteRecorder(db)
    try:
        assert fold_session(fresh.read_stream("session-s1")) == state
        assert fresh.load_blob(result[0]) == {"stdout": "ok"}
        assert {r.metadata.request_id for r in fresh.read_stream("session-s1")} == {"req-1"}
    finally:
        fresh.close()


async def test_rejected_command_appends_nothing_and_the_actor_keeps_serving(session, store):
    """A command that does not fit raises CommandRejectedError; the stream is unchanged."""
    await session.begin_turn(request(1))
    outcome, blob = answer(7)
    with pytest.raises(CommandRejectedError, match="turn 7 does not exist"):
        await session.finish_turn(7, outcome, blobs=[blob])
    assert await store.stream_version("session-s1") == 2
    assert await session.begin_turn(request(2)) == 2


async def test_conflict_with_another_process_reloads_and_retries_once(db, session):
    """If another process appended to the stream, the actor catches up and retries."""
    await session.begin_turn(request(1))
    other = SqliteRecorder(db)
    try:
        other.append("session-s1", 2, [TurnStarted(turn=2, request_id="cli", model="m",
                                                   stream=False)])
    finally:
        other.close()
    before = conflict_retries()
    with capture_logs() as logs:
        assert await session.begin_turn(request(3)) == 3
    assert [e["event"] for e in logs].count("session_conflict_retried") == 1
    assert conflict_retries() == before + 1
    state = await session.state()
    assert [t.request_id for t in state.turns] == ["req-1", "cli", "req-3"]


async def test_blob_hashing_happens_on_the_actor_thread(session, monkeypatch):
    """The request's blobs are hashed in the actor's thread, not in the trio thread."""
    threads = set()
    real = blob_cache.make_blob

    def spy(content):
        threads.add(threading.current_thread())
        return real(content)

    monkeypatch.setattr(blob_cache, "make_blob", spy)
    await session.begin_turn(request(2))
    assert threads
    assert threading.current_thread() not in threads


async def test_unfoldable_stream_is_an_error_for_the_caller(db, store):
    """A stream that cannot be folded raises SessionFoldError on use; the actor survives."""
    other = SqliteRecorder(db)
    try:
        other.append("session-bad", 0, [TurnStarted(turn=1, request_id="r", model="m",
                                                    stream=False)])
    finally:
        other.close()
    ref = SessionActor.start("bad", store)
    with pytest.raises(SessionFoldError, match="not SessionStarted"):
        await ref.proxy().state()
    assert ref.is_alive()


async def test_new_session_has_no_state(session):
    """A session with no events has state None and recovers to version 0."""
    assert await session.state() is None
    assert await session.recover() == 0


async def test_stopped_store_is_a_closed_store_for_the_caller(store, session):
    """With the writer stopped, a command fails with StoreClosedError, not an actor error."""
    await store.aclose()
    with pytest.raises(StoreClosedError):
        await session.begin_turn(request(1))


async def test_commands_fold_what_they_committed_without_reading_it_back(db, store, session,
                                                                         monkeypatch):
    """After the first load, commands read nothing back, and the state equals a fresh fold."""
    reads = []
    original = store.read_stream
    monkeypatch.setattr(store, "read_stream", lambda *a, **k: reads.append(a) or original(*a, **k))
    turn = await session.begin_turn(request(1))
    assert len(reads) == 1  # the first load of the (empty) stream
    outcome, blob = answer(turn)
    await session.finish_turn(turn, outcome, blobs=[blob])
    await session.begin_turn(request(2))
    assert len(reads) == 1
    fresh = SqliteRecorder(db)
    try:
        assert fold_session(fresh.read_stream("session-s1")) == await session.state()
    finally:
        fresh.close()


async def test_a_routed_turn_is_begun_and_routed_in_one_commit(store, session):
    """A request carrying its route appends TurnStarted and RouteChosen in one append."""
    before = (await store.statistics()).appends
    routed = dataclasses.replace(request(1), provider="openai", backend_model="gpt-x",
                                 route_reason="default")
    turn = await session.begin_turn(routed)
    assert (await store.statistics()).appends == before + 1
    state = await session.state()
    assert (state.turn(turn).provider, state.turn(turn).backend_model) == ("openai", "gpt-x")
    events = [r.event for r in await store.read_stream("session-s1")]
    assert [type(e).__name__ for e in events] == ["SessionStarted", "TurnStarted", "RouteChosen"]


def test_an_append_result_that_does_not_match_is_read_back_instead():
    """A result naming other positions, versions or no commit time gives None (read back)."""
    events = [RouteChosen(turn=1, provider="p", backend_model="m", reason="r")]
    meta = Metadata(request_id="req-1")
    good = _as_committed("session-s", 2, events, meta, AppendResult("session-s", 3, 7, 7, 1.5))
    assert good is not None
    assert (good[0].seq, good[0].position, good[0].recorded_at) == (3, 7, 1.5)
    for result in (AppendResult("session-s", 3, 7, 7, None),
                   AppendResult("session-s", 4, 7, 8, 1.5),
                   AppendResult("session-s", 3, 7, 8, 1.5)):
        assert _as_committed("session-s", 2, events, meta, result) is None


def delayed(store, monkeypatch, seconds: float, fail: BaseException | None = None):
    """Make the store's commits reply `seconds` late (or fail with `fail` instead)."""
    real = store.submit_append

    def slow(*args, **kwargs):
        committed = real(*args, **kwargs) if fail is None else None
        late: PendingAppend = PendingAppend()

        def finish() -> None:
            if committed is None:
                late.set_exception(fail)
            else:
                late.set_result(committed.result())

        threading.Timer(seconds, finish).start()
        return late

    monkeypatch.setattr(store, "submit_append", slow)


async def test_the_actor_is_free_while_its_reply_waits_for_the_commit(store, monkeypatch):
    """A command's reply waits for the commit; the actor's thread does not."""
    ref = SessionActor.start("s2", store)
    await ref.proxy().begin_turn(request(1))
    delayed(store, monkeypatch, 0.3)
    route = RouteChosen(turn=1, provider="p", backend_model="m", reason="r")
    reply = ref.ask(Record(1, (route,)), block=False)
    with trio.fail_after(0.2):  # a plain call comes back before the commit does
        assert await ref.proxy().stream_id == "session-s2"
    assert await reply == 3
    assert (await ref.proxy().state()).version == 3


async def test_a_failed_commit_leaves_no_fold_of_its_events(db, store, session, monkeypatch):
    """The caller gets the commit's error; the state stays the fold of what is stored."""
    await session.begin_turn(request(1))
    with monkeypatch.context() as patch:
        delayed(store, patch, 0.01, fail=StoreBrokenError("disk on fire"))
        with pytest.raises(StoreBrokenError, match="disk on fire"):
            await session.record(1, RouteChosen(turn=1, provider="p", backend_model="m",
                                                reason="r"))
    state = await session.state()
    assert state.version == 2
    fresh = SqliteRecorder(db)
    try:
        assert fold_session(fresh.read_stream("session-s1")) == state
    finally:
        fresh.close()
    assert await session.record(1, RouteChosen(turn=1, provider="p", backend_model="m",
                                               reason="r")) == 3


async def test_a_cancelled_caller_leaves_the_command_whole(db, store, session, monkeypatch):
    """Cancelling the awaiting task neither hangs it nor half-writes: the append commits."""
    await session.begin_turn(request(1))
    delayed(store, monkeypatch, 0.1)
    with trio.move_on_after(0.02) as scope:
        await session.record(1, RouteChosen(turn=1, provider="p", backend_model="m",
                                            reason="r"))
    assert scope.cancelled_caught
    state = await session.state()  # waits for the commit in flight, then answers
    assert state.version == 3
    fresh = SqliteRecorder(db)
    try:
        assert fold_session(fresh.read_stream("session-s1")) == state
    finally:
        fresh.close()


async def test_stopping_the_actor_answers_the_command_in_flight(store, monkeypatch):
    """An actor stopped while a reply waits for its commit answers it before it ends."""
    ref = SessionActor.start("s3", store)
    await ref.proxy().begin_turn(request(1))
    delayed(store, monkeypatch, 0.1)
    reply = ref.ask(Record(1, (RouteChosen(turn=1, provider="p", backend_model="m",
                                           reason="r"),)), block=False)
    with trio.fail_after(5):
        assert await ref.stop(block=False) is True
        assert await reply == 3


async def test_errors_inside_a_shared_commit_reach_only_their_caller(db, store):
    """20 sessions commit together; the one that conflicts twice fails alone."""
    refs = {n: SessionActor.start(f"m{n}", store) for n in range(20)}
    for ref in refs.values():
        await ref.proxy().begin_turn(request(1))
    other = SqliteRecorder(db)
    racing = RouteChosen(turn=1, provider="cli", backend_model="m", reason="r")
    original = store.submit_append

    def conflicting(stream_id, expected, events, **kwargs):
        if stream_id == "session-m7":  # another process wins before every attempt
            other.append(stream_id, -1, [racing])
        return original(stream_id, expected, events, **kwargs)

    store.submit_append = conflicting
    outcomes: dict[int, object] = {}

    async def record(n: int) -> None:
        try:
            outcomes[n] = await refs[n].ask(Record(1, (racing,)), block=False)
        except ConcurrencyError as exc:
            outcomes[n] = exc

    try:
        async with trio.open_nursery() as nursery:
            for n in refs:
                nursery.start_soon(record, n)
    finally:
        other.close()
    assert isinstance(outcomes.pop(7), ConcurrencyError)
    assert set(outcomes.values()) == {3}


async def test_two_commands_sent_together_to_one_session_both_commit(store, session):
    """A second command queued behind an uncommitted first one commits it, then itself."""
    await session.begin_turn(request(1))
    route = RouteChosen(turn=1, provider="p", backend_model="m", reason="r")
    with trio.fail_after(5):
        first, second = session.record(1, route), session.record(1, route)
        assert (await first, await second) == (3, 4)


async def test_sessions_commit_their_appends_together_on_their_worker(db, store):
    """32 sessions appending at once share commits, made on the dispatcher's workers,
    not on the writer thread."""
    refs = [SessionActor.start(f"w{n}", store) for n in range(32)]
    for ref in refs:
        await ref.proxy().begin_turn(request(1))
    recorder = store._recorder
    committers: list[str] = []
    remove = recorder.add_commit_listener(
        lambda _: committers.append(threading.current_thread().name))
    batches = recorder.batches
    route = RouteChosen(turn=1, provider="p", backend_model="m", reason="r")

    async def record(ref) -> None:
        for _ in range(10):
            await ref.ask(Record(1, (route,)), block=False)

    async with trio.open_nursery() as nursery:
        for ref in refs:
            nursery.start_soon(record, ref)
    remove()
    assert recorder.batches - batches < 320
    assert committers
    assert all(name.startswith("actors-") for name in committers)


async def test_the_gateway_key_of_a_turn_is_in_its_metadata(db, session):
    """TurnRequest.key_id (the API key's public id) lands in the commit's Metadata.key_id."""
    keyed = dataclasses.replace(request(1), key_id="lk_0123456789ab")
    assert await session.begin_turn(keyed) == 1
    fresh = SqliteRecorder(db)
    try:
        assert [r.metadata.key_id for r in fresh.read_stream("session-s1")] == [
            "lk_0123456789ab", "lk_0123456789ab"]
    finally:
        fresh.close()
