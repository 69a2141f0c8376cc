"""`EventStore`: the one way the gateway appends, and `EventStoreWriter`, the actor behind it.

The writer actor owns one `Recorder` (normally a `SqliteRecorder` opened from a
path and a durability level): it keeps the recorder's lifecycle (closing it when
it stops), answers reads on its own thread (so the process keeps one reader
connection for them however many sessions come and go) and reports statistics.

Appends do not pass through the actor's mailbox. `EventStore` has one append
method per side:

- `submit_append` for actor threads: the request goes straight into the
  recorder's group commit from the caller's thread and a future resolves once it
  is committed (`.result()` waits for it; the session actors reply through it);
- `await append(...)` for trio code appending to streams other than sessions
  (`tasks-`, `workspace-`, a CLI session outside any turn): the same submission,
  awaited without blocking trio. Session streams within a turn go through
  `actors.Sessions` instead.

Nothing else in the code base calls a recorder's `append`: the recorder's
commit thread is the only writer, and the writer's statistics count every request.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from actors._trio import TrioActor, TrioFuture
from eventstore import (
    AppendResult,
    BlobRef,
    ConcurrencyError,
    Durability,
    Event,
    EventRegistry,
    Metadata,
    Recorded,
    Recorder,
    SqliteRecorder,
    StoreClosedError,
)

__all__ = ["APPEND_BUCKETS", "EventStore", "EventStoreWriter", "WriterHealth",
           "WriterStatistics"]

log = structlog.get_logger()

APPEND_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                  0.25, 0.5, 1.0)
"""Upper bounds (seconds) of the append latency buckets (`WriterStatistics`; +Inf added)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStatistics:
    """What the writer has done since it started."""

    appends: int  # append requests committed
    events: int  # events those requests stored
    conflicts: int  # requests refused with ConcurrencyError
    failures: int  # requests that failed otherwise
    batches: int  # group commits of the recorder (0 for a recorder without group commit)
    last_position: int
    # Submit-to-commit time of the committed and refused appends: counts per bucket of
    # `APPEND_BUCKETS` (the last is +Inf, not cumulative) and their sum in seconds.
    append_buckets: tuple[int, ...] = ()
    append_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterHealth:
    """Result of `check_health`: can the store still be read, and where is the log."""

    ok: bool
    detail: str
    last_position: int


class EventStoreWriter(TrioActor):
    """Owns the recorder: its lifecycle, its reads, its statistics (see module docstring)."""

    def __init__(self, recorder: Recorder, tally: _Tally | None = None) -> None:
        super().__init__()
        self._recorder = recorder
        self._tally = tally if tally is not None else _Tally()

    # -- asks ----------------------------------------------------------------------
    def read_stream(
        self, stream_id: str, from_seq: int = 1, to_seq: int | None = None
    ) -> list[Recorded[Event]]:
        """Events of one stream (see `Recorder.read_stream`)."""
        return self._recorder.read_stream(stream_id, from_seq, to_seq)

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 if it is empty)."""
        return self._recorder.stream_version(stream_id)

    def statistics(self) -> WriterStatistics:
        """Counters since start, the recorder's group commits and the last position."""
        counts = self._tally.snapshot()
        if isinstance(self._recorder, SqliteRecorder):
            for key, value in self._recorder.append_counts._asdict().items():
                counts[key] += value
        batches = getattr(self._recorder, "batches", 0)
        buckets, seconds = self._tally.latency()
        return WriterStatistics(batches=int(batches), last_position=self._recorder.last_position(),
                                append_buckets=buckets, append_seconds=seconds, **counts)

    def check_health(self) -> WriterHealth:
        """Read from the store; report whether that worked (never raises)."""
        try:
            self._recorder.stream_version("system")
            last = self._recorder.last_position()
        except Exception as exc:  # noqa: BLE001  (a health check reports failures, never raises)
            return WriterHealth(ok=False, detail=f"{type(exc).__name__}: {exc}", last_position=0)
        return WriterHealth(ok=True, detail="ok", last_position=last)

    # -- lifecycle -----------------------------------------------------------------
    def on_stop(self) -> None:
        """Commit what is queued and close the recorder."""
        self._recorder.close()
        log.info("event_store_writer_stopped")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        """Close the recorder when the actor dies of an unhandled exception."""
        self._recorder.close()


class EventStore:
    """Handle on a running `EventStoreWriter`; safe to share between trio and threads."""

    def __init__(self, ref: pykka.ActorRef[EventStoreWriter], recorder: Recorder,
                 tally: _Tally) -> None:
        self.ref = ref
        self._proxy = ref.proxy()
        self._recorder = recorder  # appended to from the callers' threads (module docstring)
        self._tally = tally
        self._group_commit = isinstance(recorder, SqliteRecorder)
        self.shared = recorder.shared  # other gateways append to this log too

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "NORMAL",
        registry: EventRegistry | None = None,
    ) -> EventStore:
        """Open the database at `path` and start the writer that owns it.

        Raises:
            SchemaVersionError: the file was written by a newer Lynkr.
            StoreBrokenError: the file cannot be opened.
            ValueError: `durability` is neither NORMAL nor FULL.
        """
        recorder = SqliteRecorder(path, durability=durability, registry=registry)
        return cls.start(recorder)

    @classmethod
    def start(cls, recorder: Recorder) -> EventStore:
        """Start a writer owning an already open `recorder` (e.g. a `MemoryRecorder`)."""
        tally = _Tally()
        return cls(EventStoreWriter.start(recorder, tally), recorder, tally)

    def submit_append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], *,
        metadata: Metadata | None = None, event_ids: Sequence[str] | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (), defer: bool = False,
    ) -> Future[AppendResult]:
        """Queue an append and return its commit future: the append of actor threads.

        The arguments are those of `Recorder.submit_append`. With a `SqliteRecorder`
        the request goes into its group commit from the calling thread and the future
        resolves on the committing thread (conflicts arrive on it as
        `ConcurrencyError`); `.result()` waits for it. With `defer` the request waits
        for the caller's `commit_deferred()` instead of waking the writer thread. A
        recorder without group commit appends at once and returns a resolved future.

        Raises:
            StoreClosedError: the writer has stopped.
            EventStoreError: the request itself is invalid.
        """
        if not self.ref.is_alive():
            raise StoreClosedError("the event store writer is stopped")
        tally = self._tally
        try:
            pending = self._recorder.submit_append(
                stream_id, expected_version, events, metadata=metadata, event_ids=event_ids,
                blobs=blobs, defer=defer)
        except Exception as exc:
            tally.add(stream_id, events, exc)
            raise
        if not self._group_commit:  # a SqliteRecorder counts what its commits answer
            pending.add_done_callback(lambda done: tally.add(stream_id, events,
                                                             done.exception()))
        pending.add_done_callback(tally.timer())
        return pending

    async def append(self, stream_id: str, expected_version: int, events: Sequence[Event], *,
                     metadata: Metadata | None = None,
                     blobs: Iterable[tuple[BlobRef, bytes]] = ()) -> AppendResult:
        """`submit_append` for trio code: returns once the events are committed.

        For streams other than sessions (`tasks-`, `workspace-`, a CLI session outside
        any turn); session events within a turn go through `actors.Sessions`. The
        request is encoded on the calling thread; the wait does not block trio.

        Raises:
            ConcurrencyError: `expected_version` is not the stream's version.
            StoreClosedError: the writer has stopped.
        """
        committed: TrioFuture[AppendResult] = TrioFuture()
        committed.set(self.submit_append(stream_id, expected_version, events,
                                         metadata=metadata, blobs=blobs))
        return await committed

    @property
    def submits_directly(self) -> bool:
        """True if `submit_append` queues into the recorder's group commit without
        waiting (a `SqliteRecorder`); False if it appends before it returns."""
        return self._group_commit

    def commit_deferred(self, *, wait: bool = True) -> int:
        """Commit the appends submitted with `defer=True`, on this thread (see
        `SqliteRecorder.commit_deferred`, also for `wait`); returns how many there were."""
        return self._recorder.commit_deferred(wait=wait)

    def commit_deferred_nowait(self) -> int:
        """`commit_deferred(wait=False)`: for a thread that must never block."""
        return self.commit_deferred(wait=False)

    def read_stream(
        self, stream_id: str, from_seq: int = 1, to_seq: int | None = None
    ) -> TrioFuture[list[Recorded[Event]]]:
        """Events of one stream with ``from_seq <= seq <= to_seq``, in order."""
        return self._proxy.read_stream(stream_id, from_seq, to_seq)  # type: ignore[no-any-return]

    def stream_version(self, stream_id: str) -> TrioFuture[int]:
        """The stream's current version (0 if it is empty)."""
        return self._proxy.stream_version(stream_id)  # type: ignore[no-any-return]

    def statistics(self) -> TrioFuture[WriterStatistics]:
        """The writer's counters (see `WriterStatistics`)."""
        return self._proxy.statistics()  # type: ignore[no-any-return]

    def check_health(self) -> TrioFuture[WriterHealth]:
        """Whether the store can still be read (see `WriterHealth`)."""
        return self._proxy.check_health()  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop the writer, committing queued appends and closing the store (blocks)."""
        self.ref.stop()

    async def aclose(self) -> None:
        """`stop` for trio code: waits in a worker thread, not on the trio thread."""
        await self.ref.stop(block=False)


class _Tally:
    """The writer's own counters: appends to a recorder without group commit, and
    requests a `SqliteRecorder` refused before queueing them (it counts the rest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {"appends": 0, "events": 0, "conflicts": 0, "failures": 0}
        self._buckets = [0] * (len(APPEND_BUCKETS) + 1)
        self._seconds = 0.0

    def timer(self) -> Callable[[object], None]:
        """A commit callback that adds the time from now to its call to the latency
        buckets: one closure and two clock reads per append, under the counters' lock."""
        started = time.perf_counter()

        def committed(_done: object) -> None:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._buckets[bisect.bisect_left(APPEND_BUCKETS, elapsed)] += 1
                self._seconds += elapsed

        return committed

    def latency(self) -> tuple[tuple[int, ...], float]:
        """The append latency buckets (see `WriterStatistics`) and their sum."""
        with self._lock:
            return tuple(self._buckets), self._seconds

    def add(self, stream_id: str, events: Sequence[Event], exc: BaseException | None) -> None:
        """Count one append request that committed (`exc` None) or failed."""
        if exc is None:
            key = "appends"
        else:
            key = "conflicts" if isinstance(exc, ConcurrencyError) else "failures"
        with self._lock:
            self._counts[key] += 1
            if exc is None:
                self._counts["events"] += len(events)
        if key == "failures":
            log.warning("append_failed", stream_id=stream_id, error_type=type(exc).__name__,
                        error=str(exc))

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters."""
        with self._lock:
            return dict(self._counts)
