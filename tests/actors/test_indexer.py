"""The indexer actor: one rebuild at a time, coalesced requests, progress, events."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
import trio

from actors import EventStore
from actors.indexer import IndexerActor, IndexerStoppedError, request_rebuild
from eventstore import MemoryRecorder, SqliteRecorder

WAIT = 5.0


@dataclass(frozen=True)
class Report:
    """What a rebuild reports; `number` says which rebuild it was."""

    number: int
    files: int = 3
    symbols: int = 7
    changed: int = 2
    problems: tuple[str, ...] = ("x.bin",)
    duration_s: float = 0.25


@dataclass(frozen=True)
class Step:
    done: int
    total: int


class GatedIndexer:
    """An indexer whose rebuild reports progress, then waits for `gate` before finishing.

    While it waits it keeps reporting step 1 every 10 ms, as a real rebuild reports
    each file, so a stopping actor can cancel it.
    """

    root = "/workspace"

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.gate = threading.Event()
        self.fail: Exception | None = None

    def rebuild(self, progress=None):
        self.calls += 1
        number = self.calls
        for done in (1, 2, 3):
            if progress is not None:
                progress(Step(done, 3))
            if done == 1:
                self.started.set()
                for _ in range(int(WAIT * 100)):
                    if self.gate.wait(0.01):
                        break
                    if progress is not None:
                        progress(Step(1, 3))
        if self.fail is not None:
            raise self.fail
        return Report(number)


@pytest.fixture
def indexer():
    return GatedIndexer()


def test_each_rebuild_appends_index_rebuilt_to_the_system_stream(indexer, tmp_path):
    """A finished rebuild is recorded as IndexRebuilt before the caller gets the report."""
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    ref = IndexerActor.start(indexer, EventStore.start(recorder))
    indexer.gate.set()
    report = request_rebuild(ref).get(timeout=WAIT)
    [recorded] = recorder.read_stream("system")
    recorder.close()
    event = recorded.event
    assert report == Report(1)
    assert (event.workspace, event.files, event.symbols, event.changed, event.problems,
            event.duration_s) == ("/workspace", 3, 7, 2, 1, 0.25)
    assert recorded.metadata.actor == "indexer"


def test_requests_during_a_rebuild_coalesce_into_one_following_rebuild(indexer):
    """Two callers asking while a rebuild runs both get the one rebuild that follows it."""
    recorder = MemoryRecorder()
    ref = IndexerActor.start(indexer, EventStore.start(recorder))
    first = request_rebuild(ref)
    assert indexer.started.wait(WAIT)
    second, third = request_rebuild(ref), request_rebuild(ref)
    assert ref.proxy().status().get(timeout=WAIT).waiting == 2
    indexer.gate.set()
    assert first.get(timeout=WAIT) == Report(1)
    assert second.get(timeout=WAIT) is third.get(timeout=WAIT)
    assert second.get().number == 2
    assert indexer.calls == 2
    assert len(recorder.read_stream("system")) == 2


def test_progress_reaches_the_caller_and_the_status(indexer):
    """The caller's progress callback sees every step; status shows the running rebuild."""
    seen: list[int] = []
    ref = IndexerActor.start(indexer, EventStore.start(MemoryRecorder()))
    future = request_rebuild(ref, lambda step: seen.append(step.done))
    assert indexer.started.wait(WAIT)
    status = ref.proxy().status().get(timeout=WAIT)
    assert (status.running, status.done, status.total) == (True, 1, 3)
    indexer.gate.set()
    future.get(timeout=WAIT)
    assert seen[0] == 1
    assert seen[-2:] == [2, 3]
    after = ref.proxy().status().get(timeout=WAIT)
    assert (after.running, after.rebuilds, after.last_report) == (False, 1, Report(1))


def test_a_failed_rebuild_fails_its_callers_and_the_actor_carries_on(indexer):
    """The caller gets the indexer's exception, nothing is recorded, the next rebuild works."""
    recorder = MemoryRecorder()
    ref = IndexerActor.start(indexer, EventStore.start(recorder))
    indexer.gate.set()
    indexer.fail = OSError("disk gone")
    with pytest.raises(OSError, match="disk gone"):
        request_rebuild(ref).get(timeout=WAIT)
    indexer.fail = None
    assert request_rebuild(ref).get(timeout=WAIT).number == 2
    assert len(recorder.read_stream("system")) == 1


def test_stopping_cancels_the_rebuild_and_fails_every_waiter(indexer):
    """Stopping mid-rebuild cancels it at the next step; running and queued callers fail."""
    recorder = MemoryRecorder()
    ref = IndexerActor.start(indexer, EventStore.start(recorder))
    running = request_rebuild(ref)
    assert indexer.started.wait(WAIT)
    queued = request_rebuild(ref)
    ref.stop(timeout=WAIT)
    for future in (running, queued):
        with pytest.raises(IndexerStoppedError):
            future.get(timeout=WAIT)
    assert recorder.read_stream("system") == []
    assert indexer.calls == 1


def test_asking_a_stopped_indexer_fails_at_once(indexer):
    """A request to a dead actor resolves with IndexerStoppedError instead of hanging."""
    ref = IndexerActor.start(indexer, EventStore.start(MemoryRecorder()))
    ref.stop()
    with pytest.raises(IndexerStoppedError):
        request_rebuild(ref).get(timeout=WAIT)


async def test_trio_code_awaits_a_rebuild(indexer):
    """From trio, the rebuild's future is awaited without blocking the trio thread."""
    ref = IndexerActor.start(indexer, EventStore.start(MemoryRecorder()))
    indexer.gate.set()
    with trio.fail_after(WAIT):
        report = await request_rebuild(ref)
    assert report.number == 1


def test_a_failing_progress_listener_does_not_stop_the_rebuild(indexer):
    """A callback that raises is dropped; the rebuild and its report go on."""
    calls: list[int] = []

    def broken(step):
        calls.append(step.done)
        raise RuntimeError("display gone")

    ref = IndexerActor.start(indexer, EventStore.start(MemoryRecorder()))
    indexer.gate.set()
    assert request_rebuild(ref, broken).get(timeout=WAIT) == Report(1)
    assert calls == [1]


def test_the_event_store_actor_can_be_the_sink(indexer):
    """With the EventStore handle as sink, the rebuild is recorded through the writer actor."""
    from actors import EventStore

    recorder = MemoryRecorder()
    store = EventStore.start(recorder)
    ref = IndexerActor.start(indexer, store)
    indexer.gate.set()
    assert request_rebuild(ref).get(timeout=WAIT) == Report(1)
    assert [r.event.type_name for r in recorder.read_stream("system")] == ["IndexRebuilt"]
    ref.stop()
    store.stop()
