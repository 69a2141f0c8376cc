"""The event store writer actor: group commit through the actor, conflicts, stats, lifecycle."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest
import trio

from actors import EventStore
from eventstore import (
    ConcurrencyError,
    Event,
    EventRegistry,
    MemoryRecorder,
    Metadata,
    SqliteRecorder,
    StoreClosedError,
    UnknownEventTypeError,
    make_blob,
    verify_log,
)
from eventstore.events.system import ActorCrashed

REGISTRY = EventRegistry()


@REGISTRY.register
@dataclass(frozen=True, slots=True, kw_only=True)
class Counted(Event):
    """Test event: task `task` appended its `n`-th event."""

    task: int
    n: int


@pytest.fixture
def db(tmp_path):
    return tmp_path / "lynkr.db"


async def test_fifty_tasks_append_ten_thousand_events_contiguously(db):
    """50 trio tasks x 200 appends to 10 streams: contiguous, no gaps, no duplicates."""
    store = EventStore.open(db, registry=REGISTRY)

    async def writer(task: int) -> None:
        for n in range(200):
            await store.append(f"s-{task % 10}", -1, [Counted(task=task, n=n)])

    async with trio.open_nursery() as nursery:
        for task in range(50):
            nursery.start_soon(writer, task)
    stats = await store.statistics()
    await store.aclose()

    check = SqliteRecorder(db, registry=REGISTRY)
    try:
        total = 0
        for stream in range(10):
            records = check.read_stream(f"s-{stream}")
            assert [r.seq for r in records] == list(range(1, 1001))
            pairs = {(r.event.task, r.event.n) for r in records}
            assert len(pairs) == 1000
            assert {task % 10 for task, _ in pairs} == {stream}
            total += len(records)
        assert total == 10_000 == check.last_position()
        assert all(damage is None for _, _, damage in verify_log(check))
    finally:
        check.close()
    assert (stats.appends, stats.events, stats.conflicts) == (10_000, 10_000, 0)
    assert stats.batches < stats.appends  # concurrent appends shared commits


async def test_conflicting_expected_versions_let_exactly_one_writer_win(db):
    """Two concurrent appends expecting the same version: one commits, one ConcurrencyError."""
    store = EventStore.open(db, registry=REGISTRY)
    outcomes: dict[str, list[str]] = {}

    async def contend(stream: str, task: int) -> None:
        try:
            await store.append(stream, 0, [Counted(task=task, n=0)])
        except ConcurrencyError:
            outcomes.setdefault(stream, []).append("lost")
        else:
            outcomes.setdefault(stream, []).append("won")

    async with trio.open_nursery() as nursery:
        for stream in range(20):
            for task in (1, 2):
                nursery.start_soon(contend, f"c-{stream}", task)
    assert all(sorted(v) == ["lost", "won"] for v in outcomes.values())
    assert len(outcomes) == 20
    for stream in range(20):
        assert await store.stream_version(f"c-{stream}") == 1
    stats = await store.statistics()
    assert (stats.appends, stats.conflicts) == (20, 20)


async def test_append_replies_after_commit(db):
    """When the append's future resolves, a fresh recorder on the file sees the events."""
    store = EventStore.open(db, registry=REGISTRY)
    ref, data = make_blob({"big": "x" * 2000})
    result = await store.append("s", 0, [Counted(task=1, n=1)], blobs=[(ref, data)],
                                metadata=Metadata(request_id="req-1"))
    other = SqliteRecorder(db, registry=REGISTRY)
    try:
        [record] = other.read_stream("s")
        assert (record.position, record.metadata.request_id) == (result.last_position, "req-1")
        assert other.load_blob(ref) == {"big": "x" * 2000}
    finally:
        other.close()


async def test_reads_go_through_the_writer(db):
    """`read_stream` returns the stream in order, from a given sequence number."""
    store = EventStore.open(db, registry=REGISTRY)
    await store.append("s", 0, [Counted(task=1, n=n) for n in range(5)])
    records = await store.read_stream("s", 3)
    assert [r.event.n for r in records] == [2, 3, 4]


def test_writer_works_from_threads_with_submit_append(db):
    """Threads (other actors) append with `submit_append(...).result()` on the same handle."""
    store = EventStore.open(db, registry=REGISTRY)
    result = store.submit_append("s", 0, [Counted(task=1, n=1)]).result(timeout=5)
    assert result.version == 1
    assert store.read_stream("s").get(timeout=5)[0].event == Counted(task=1, n=1)
    store.stop()


async def test_writer_accepts_a_memory_recorder():
    """A writer can own a MemoryRecorder for unit tests; appends commit synchronously."""
    store = EventStore.start(MemoryRecorder(registry=REGISTRY))
    await store.append("s", 0, [Counted(task=1, n=1)])
    with pytest.raises(ConcurrencyError):
        await store.append("s", 0, [Counted(task=2, n=1)])
    assert (await store.statistics()).batches == 0


async def test_health_check_reports_a_readable_store(db):
    """A working store is healthy and reports its last position."""
    store = EventStore.open(db, registry=REGISTRY)
    await store.append("s", 0, [Counted(task=1, n=1)])
    health = await store.check_health()
    assert (health.ok, health.last_position) == (True, 1)


async def test_health_check_reports_a_closed_store_without_raising(db):
    """If the recorder was closed underneath, the health check says so instead of raising."""
    recorder = SqliteRecorder(db, registry=REGISTRY)
    store = EventStore.start(recorder)
    recorder.close()
    health = await store.check_health()
    assert not health.ok
    assert "StoreClosedError" in health.detail


async def test_stopping_the_writer_closes_the_recorder(db):
    """After stop, the recorder refuses appends and the handle fails with StoreClosedError."""
    recorder = SqliteRecorder(db, registry=REGISTRY)
    store = EventStore.start(recorder)
    await store.append("s", 0, [Counted(task=1, n=1)])
    await store.aclose()
    with pytest.raises(StoreClosedError):
        recorder.append("s", 1, [Counted(task=1, n=2)])
    with pytest.raises(StoreClosedError, match="writer is stopped"):
        await store.append("s", 1, [Counted(task=1, n=2)])


async def test_unregistered_event_fails_that_append_only(db):
    """An event the registry does not know fails its own append; the writer keeps serving."""
    store = EventStore.open(db, registry=REGISTRY)
    with pytest.raises(UnknownEventTypeError, match="ActorCrashed"):
        await store.append("s", 0, [ActorCrashed(actor="a", error_type="E", error="e")])
    await store.append("s", 0, [Counted(task=1, n=1)])
    stats = await store.statistics()
    assert (stats.appends, stats.failures) == (1, 1)


async def test_appends_racing_a_stop_all_get_an_answer(db):
    """Appends queued before, during and after a stop all resolve; none waits forever."""
    store = EventStore.open(db, registry=REGISTRY)
    before = [store.submit_append("s", -1, [Counted(task=1, n=n)]) for n in range(100)]
    stopping = store.ref.stop(block=False)
    after = []
    for n in range(100):
        with contextlib.suppress(StoreClosedError):
            after.append(store.submit_append("s", -1, [Counted(task=2, n=n)]))
    with trio.fail_after(5):
        assert [f.result().version for f in before] == list(range(1, 101))
        assert await stopping is True
        for future in after:  # queued before the recorder closed: committed by its close
            assert future.result().version > 100


def test_submit_append_from_threads_is_committed_and_counted(db):
    """Direct appends from 8 threads are contiguous, durable and in the writer's counters."""
    import threading

    store = EventStore.open(db, registry=REGISTRY)

    def writer(task: int) -> None:
        for n in range(25):
            store.submit_append(f"s-{task}", n, [Counted(task=task, n=n)],
                                metadata=Metadata(actor="t")).result()

    threads = [threading.Thread(target=writer, args=(task,)) for task in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = store.statistics().get()
    assert (stats.appends, stats.events, stats.last_position) == (200, 200, 200)
    assert [r.event.n for r in store.read_stream("s-3").get()] == list(range(25))
    store.stop()


def test_submit_append_raises_conflicts_on_its_future_and_counts_them(db):
    """A stale expected version fails the future with ConcurrencyError and is counted."""
    store = EventStore.open(db, registry=REGISTRY)
    store.submit_append("s", 0, [Counted(task=0, n=0)]).result()
    with pytest.raises(ConcurrencyError):
        store.submit_append("s", 0, [Counted(task=0, n=1)]).result()
    stats = store.statistics().get()
    assert (stats.appends, stats.conflicts) == (1, 1)
    store.stop()


def test_submit_append_after_stop_is_a_closed_store(db):
    """Once the writer has stopped, an append raises StoreClosedError at once."""
    store = EventStore.open(db, registry=REGISTRY)
    store.stop()
    with pytest.raises(StoreClosedError):
        store.submit_append("s", 0, [Counted(task=0, n=0)])


def test_submit_append_with_a_memory_recorder_appends_at_once_and_counts():
    """Without group commit the append is made on the caller's thread and still counted."""
    store = EventStore.start(MemoryRecorder(registry=REGISTRY))
    future = store.submit_append("s", 0, [Counted(task=0, n=0)])
    assert future.done()
    assert future.result().version == 1
    with pytest.raises(ConcurrencyError):
        store.submit_append("s", 0, [Counted(task=0, n=1)]).result()
    stats = store.statistics().get()
    assert (stats.appends, stats.conflicts) == (1, 1)
    store.stop()
