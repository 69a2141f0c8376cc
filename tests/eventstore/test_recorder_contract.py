"""One contract, three recorders: memory, SQLite and PostgreSQL behave the same."""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import (
    ANY_VERSION,
    BlobNotFoundError,
    BlobRef,
    ConcurrencyError,
    Event,
    EventRegistry,
    EventStoreError,
    MemoryRecorder,
    Metadata,
    Recorder,
    SqliteRecorder,
    StoreClosedError,
    UnknownEventTypeError,
    make_blob,
    open_recorder,
    verify_stream,
)
from eventstore.events.session import RouteChosen, ToolCompleted

STRAY = EventRegistry()


@STRAY.register
@dataclass(frozen=True, slots=True, kw_only=True)
class StrayHappened(Event):
    """An event type only the stray registry knows."""

    note: str


def route(turn: int) -> RouteChosen:
    """A small registered event."""
    return RouteChosen(turn=turn, provider="p", backend_model="m", reason="test")


class RecorderContract(abc.ABC):
    """Behaviour every recorder must show; subclassed once per implementation."""

    @abc.abstractmethod
    def make_recorder(self, path: Path, registry: EventRegistry | None = None) -> Recorder:
        """A fresh recorder storing under `path`."""

    @pytest.fixture
    def recorder(self, tmp_path: Path):
        rec = self.make_recorder(tmp_path)
        yield rec
        rec.close()

    def test_append_then_read_stream_returns_events_in_order(self, recorder: Recorder) -> None:
        """Appended events come back with seq 1..n and equal values."""
        result = recorder.append("s-1", 0, [route(1), route(2), route(3)])
        assert result.version == 3
        got = recorder.read_stream("s-1")
        assert [r.seq for r in got] == [1, 2, 3]
        assert [r.event for r in got] == [route(1), route(2), route(3)]
        assert all(r.stream_id == "s-1" for r in got)

    def test_append_result_tells_where_and_when(self, recorder: Recorder) -> None:
        """The result carries positions and the recorded_at the stored events got."""
        result = recorder.append("s-1", 0, [route(1), route(2)])
        stored = recorder.read_stream("s-1")
        assert (result.first_position, result.last_position) == (stored[0].position,
                                                                 stored[1].position)
        assert result.recorded_at == stored[1].recorded_at

    def test_read_stream_honours_from_and_to(self, recorder: Recorder) -> None:
        """`from_seq`/`to_seq` bound the slice inclusively."""
        recorder.append("s-1", 0, [route(i) for i in range(1, 6)])
        assert [r.seq for r in recorder.read_stream("s-1", 2, 4)] == [2, 3, 4]
        assert [r.seq for r in recorder.read_stream("s-1", 4)] == [4, 5]
        assert recorder.read_stream("nope") == []

    def test_conflict_raises_and_never_overwrites(self, recorder: Recorder) -> None:
        """A stale expected version is a `ConcurrencyError`; the stored event stays."""
        recorder.append("s-1", 0, [route(1)])
        with pytest.raises(ConcurrencyError) as info:
            recorder.append("s-1", 0, [route(99)])
        assert (info.value.expected, info.value.actual) == (0, 1)
        assert [r.event for r in recorder.read_stream("s-1")] == [route(1)]

    def test_expected_version_ahead_of_stream_conflicts(self, recorder: Recorder) -> None:
        """Expecting a version the stream has not reached is a conflict too."""
        with pytest.raises(ConcurrencyError):
            recorder.append("s-1", 5, [route(1)])
        assert recorder.stream_version("s-1") == 0

    def test_any_version_appends_at_the_end(self, recorder: Recorder) -> None:
        """`ANY_VERSION` appends whatever the stream's version."""
        recorder.append("s-1", 0, [route(1)])
        result = recorder.append("s-1", ANY_VERSION, [route(2)])
        assert result.version == 2
        assert recorder.stream_version("s-1") == 2

    def test_retry_with_same_event_ids_is_idempotent(self, recorder: Recorder) -> None:
        """Retrying an append with its event ids returns the first result, stores once."""
        first = recorder.append("s-1", 0, [route(1), route(2)], event_ids=["a", "b"])
        again = recorder.append("s-1", 0, [route(1), route(2)], event_ids=["a", "b"])
        assert again == first
        assert recorder.stream_version("s-1") == 2
        assert [r.event_id for r in recorder.read_stream("s-1")] == ["a", "b"]

    def test_event_ids_reused_on_another_stream_are_refused(self, recorder: Recorder) -> None:
        """An event id already used by a different append is an error, not a replay."""
        recorder.append("s-1", 0, [route(1)], event_ids=["a"])
        with pytest.raises(EventStoreError):
            recorder.append("s-2", 0, [route(1)], event_ids=["a"])
        assert recorder.stream_version("s-2") == 0

    def test_event_ids_must_match_events(self, recorder: Recorder) -> None:
        """One id per event, or the append is refused."""
        with pytest.raises(EventStoreError):
            recorder.append("s-1", 0, [route(1), route(2)], event_ids=["a"])

    def test_duplicate_event_ids_in_one_append_are_refused(self, recorder: Recorder) -> None:
        """Two events of one append cannot share an id."""
        with pytest.raises(EventStoreError, match="distinct"):
            recorder.append("s-1", 0, [route(1), route(2)], event_ids=["a", "a"])
        assert recorder.stream_version("s-1") == 0

    def test_empty_append_changes_nothing(self, recorder: Recorder) -> None:
        """Appending no events returns the current version and stores nothing."""
        recorder.append("s-1", 0, [route(1)])
        result = recorder.append("s-1", 1, [])
        assert result.version == 1
        assert recorder.last_position() == 1

    def test_unregistered_event_class_is_refused(self, recorder: Recorder) -> None:
        """Appending an event class the registry does not know raises and stores nothing."""
        with pytest.raises(UnknownEventTypeError):
            recorder.append("s-1", 0, [StrayHappened(note="x")])
        assert recorder.stream_version("s-1") == 0
        recorder.append("s-1", 0, [route(1)])
        assert recorder.stream_version("s-1") == 1

    def test_metadata_round_trips(self, recorder: Recorder) -> None:
        """Metadata stored with an append comes back with every event."""
        meta = Metadata(request_id="req-1", causation_id="ev-0", actor="session:x")
        recorder.append("s-1", 0, [route(1), route(2)], metadata=meta)
        assert [r.metadata for r in recorder.read_stream("s-1")] == [meta, meta]

    def test_same_blob_from_1000_events_is_stored_once(self, recorder: Recorder) -> None:
        """Content-addressed: one digest, one stored copy, however many events refer to it."""
        ref, data = make_blob({"system": "You are Claude Code. " * 500})
        for i in range(1000):
            recorder.append(f"s-{i % 7}", ANY_VERSION,
                            [ToolCompleted(tool="t", ok=True, result=ref, duration_ms=1.0)],
                            blobs=[(ref, data)])
        count, _ = recorder.blob_stats()
        assert count == 1
        assert recorder.load_blob(ref) == {"system": "You are Claude Code. " * 500}
        assert recorder.read_stream("s-3")[0].event.result == ref

    def test_missing_blob_raises_blob_not_found(self, recorder: Recorder) -> None:
        """Reading a digest the store does not hold names it."""
        missing = BlobRef(b"\x01" * 32, 3)
        with pytest.raises(BlobNotFoundError, match=missing.hex):
            recorder.get_blob(missing)

    def test_read_all_is_in_position_order_across_streams(self, recorder: Recorder) -> None:
        """The global log interleaves streams in append order with rising positions."""
        recorder.append("a", 0, [route(1)])
        recorder.append("b", 0, [route(2), route(3)])
        recorder.append("a", 1, [route(4)])
        got = recorder.read_all()
        assert [(r.stream_id, r.seq) for r in got] == [("a", 1), ("b", 1), ("b", 2), ("a", 2)]
        assert [r.position for r in got] == sorted(r.position for r in got)
        assert recorder.last_position() == got[-1].position

    def test_read_all_pages_with_after_and_limit(self, recorder: Recorder) -> None:
        """`after_position` and `limit` page through the log without gaps."""
        recorder.append("a", 0, [route(i) for i in range(10)])
        first = recorder.read_all(0, 4)
        rest = recorder.read_all(first[-1].position, 100)
        assert len(first) == 4
        assert [r.event for r in first + rest] == [route(i) for i in range(10)]

    def test_list_streams_filters_by_prefix(self, recorder: Recorder) -> None:
        """Stream listings honour the prefix literally (no wildcards) and count events."""
        recorder.append("session-a", 0, [route(1), route(2)])
        recorder.append("session_b", 0, [route(1)])
        recorder.append("system", 0, [route(1)])
        infos = recorder.list_streams("session-")
        assert [(i.stream_id, i.version) for i in infos] == [("session-a", 2)]
        assert len(recorder.list_streams()) == 3

    def test_wait_for_position_wakes_on_append(self, recorder: Recorder) -> None:
        """A waiter returns once another thread's append commits."""
        timer = threading.Timer(0.05, lambda: recorder.append("s", 0, [route(1)]))
        timer.start()
        try:
            assert recorder.wait_for_position(0, timeout=5) >= 1
        finally:
            timer.join()

    def test_follow_yields_the_past_then_live_appends(self, recorder: Recorder) -> None:
        """The subscription replays what is there, then wakes for each new commit."""
        recorder.append("s", 0, [route(1), route(2)])
        timer = threading.Timer(0.05, lambda: recorder.append("s", 2, [route(3)]))
        timer.start()
        seen = []
        try:
            for record in recorder.follow(1, idle_timeout=5):
                seen.append(record.event.turn)
                if record.event.turn == 3:
                    break
        finally:
            timer.join()
        assert seen == [2, 3]

    def test_follow_ends_after_idle_timeout(self, recorder: Recorder) -> None:
        """With nothing new for `idle_timeout`, the subscription ends."""
        recorder.append("s", 0, [route(1)])
        assert [r.seq for r in recorder.follow(0, idle_timeout=0.05)] == [1]

    def test_follow_ends_when_closed(self, recorder: Recorder) -> None:
        """Closing the recorder ends a subscription that waits without a timeout."""
        timer = threading.Timer(0.05, recorder.close)
        timer.start()
        try:
            assert list(recorder.follow(0)) == []
        finally:
            timer.join()

    def test_wait_for_position_times_out(self, recorder: Recorder) -> None:
        """With nothing appended the wait ends at its timeout with the old position."""
        assert recorder.wait_for_position(0, timeout=0.01) == 0

    def test_commit_listener_hears_every_commit_until_removed(self, recorder: Recorder) -> None:
        """Listeners get the last position after each commit; the remover stops them."""
        heard: list[int] = []
        remove = recorder.add_commit_listener(heard.append)
        recorder.append("s", 0, [route(1)])
        recorder.append("s", 1, [route(2), route(3)])
        remove()
        recorder.append("s", 3, [route(4)])
        assert heard == [1, 3]

    def test_failing_listener_does_not_fail_the_append(self, recorder: Recorder) -> None:
        """A listener that raises is logged; the append and other listeners are unharmed."""
        heard: list[int] = []
        recorder.add_commit_listener(lambda last: 1 / 0)
        recorder.add_commit_listener(heard.append)
        assert recorder.append("s", 0, [route(1)]).version == 1
        assert heard == [1]

    def test_unknown_type_on_read_names_the_type(self, tmp_path: Path) -> None:
        """Reading a stored type that no class handles raises naming that type."""
        writer = self.make_recorder(tmp_path, STRAY)
        writer.append("s", 0, [StrayHappened(note="x")])
        reader = self.reopen(writer, tmp_path)
        try:
            with pytest.raises(UnknownEventTypeError, match="StrayHappened"):
                reader.read_stream("s")
            with pytest.raises(UnknownEventTypeError, match="StrayHappened"):
                reader.read_all()
        finally:
            reader.close()
            writer.close()

    def test_appends_form_a_verified_hash_chain(self, recorder: Recorder) -> None:
        """Every append extends the chain so that `verify_stream` finds no damage."""
        for i in range(5):
            recorder.append("s", i, [route(i)])
        assert verify_stream(recorder, "s") is None

    def test_append_after_close_raises_closed(self, recorder: Recorder) -> None:
        """A closed recorder refuses appends; closing twice is fine."""
        recorder.close()
        recorder.close()
        with pytest.raises(StoreClosedError):
            recorder.append("s", 0, [route(1)])

    def test_close_wakes_waiters(self, recorder: Recorder) -> None:
        """Closing ends a `wait_for_position` that would otherwise block."""
        timer = threading.Timer(0.05, recorder.close)
        timer.start()
        try:
            assert recorder.wait_for_position(0, timeout=5) == 0
        finally:
            timer.join()

    def reopen(self, recorder: Recorder, path: Path) -> Recorder:
        """A recorder over the same data with the default registry."""
        return self.make_recorder(path)


class TestMemoryRecorder(RecorderContract):
    """The contract on `MemoryRecorder`."""

    def make_recorder(self, path: Path, registry: EventRegistry | None = None) -> Recorder:
        return MemoryRecorder(registry)

    def reopen(self, recorder: Recorder, path: Path) -> Recorder:
        # Memory has no file: share the data under a different registry.
        twin = MemoryRecorder()
        twin.__dict__.update({k: v for k, v in vars(recorder).items() if k != "registry"})
        return twin


class TestSqliteRecorder(RecorderContract):
    """The contract on `SqliteRecorder`."""

    def make_recorder(self, path: Path, registry: EventRegistry | None = None) -> Recorder:
        return SqliteRecorder(path / "lynkr.db", registry=registry)


class TestPostgresRecorder(RecorderContract):
    """The contract on `PostgresRecorder` (each test in a fresh schema)."""

    @pytest.fixture(autouse=True)
    def _store_url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_recorder(self, path: Path, registry: EventRegistry | None = None) -> Recorder:
        return open_recorder(self.url, registry=registry)
