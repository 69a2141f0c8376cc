"""`EventStoreWriter`: the actor that owns the event store, and `EventStore`, its handle.

The writer owns one `Recorder` (normally a `SqliteRecorder` opened from a path and
a durability level) and closes it when it stops. `append` hands each request to
the recorder's group commit and returns the commit future as a deferred reply
(see `actors._trio`): the actor is free for the next message at once, so appends
from many actors and trio tasks share one transaction, and each asker's reply is
set only after its batch is committed. Reads run on the actor's thread, so the
process keeps one reader connection for them however many sessions come and go.

Other actors append with `EventStore.submit_append` (or `append_and_wait`, which
also waits), which submits to the recorder's group commit from their own thread
(the writer's statistics still count it, and the recorder's commit thread is still
the only writer): two thread hops fewer than asking the actor.

`EventStore` is the typed handle everyone else holds. Its methods return
`TrioFuture`s: `await` them from trio, `.get()` them from threads (other actors).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

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
    PendingAppend,
    Recorded,
    Recorder,
    SqliteRecorder,
    StoreClosedError,
)

__all__ = ["EventStore", "EventStoreWriter", "WriterHealth", "WriterStatistics"]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStatistics:
    """What the writer has done since it started."""

    appends: int  # append requests committed
    events: int  # events those requests stored
    conflicts: int  # requests refused with ConcurrencyError
    failures: int  # requests that failed otherwise
    batches: int  # group commits of the recorder (0 for a recorder without group commit)
    last_position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterHealth:
    """Result of `check_health`: can the store still be read, and where is the log."""

    ok: bool
    detail: str
    last_position: int


class EventStoreWriter(TrioActor):
    """Owns the recorder; the only component that appends (see module docstring)."""

    def __init__(self, recorder: Recorder, tally: _Tally | None = None) -> None:
        super().__init__()
        self._recorder = recorder
        self._tally = tally if tally is not None else _Tally()

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        metadata: Metadata | None = None,
        event_ids: Sequence[str] | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (),
    ) -> Future[AppendResult] | AppendResult:
        """Queue an append for the next group commit (see `Recorder.append`).

        Returns:
            The commit future (a deferred reply: the asker sees the `AppendResult`
            once committed), or the result itself for a recorder without group commit.
        """
        recorder = self._recorder
        if isinstance(recorder, SqliteRecorder):
            return _submit(recorder, self._tally, stream_id, expected_version, events,
                           metadata=metadata, event_ids=event_ids, blobs=blobs)
        try:
            result = recorder.append(stream_id, expected_version, events, metadata=metadata,
                                     event_ids=event_ids, blobs=blobs)
        except Exception as exc:
            self._tally.add(stream_id, events, exc)
            raise
        self._tally.add(stream_id, events, None)
        return result

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
        return WriterStatistics(batches=int(batches), last_position=self._recorder.last_position(),
                                **counts)

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

    def __init__(
        self, ref: pykka.ActorRef[EventStoreWriter], *, direct: _Direct | None = None
    ) -> None:
        self.ref = ref
        self._proxy = ref.proxy()
        self._direct = direct  # the writer's recorder and counters, when it group-commits

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
        ref = EventStoreWriter.start(recorder, tally)
        direct = _Direct(recorder, tally) if isinstance(recorder, SqliteRecorder) else None
        return cls(ref, direct=direct)

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        metadata: Metadata | None = None,
        event_ids: Sequence[str] | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (),
    ) -> TrioFuture[AppendResult]:
        """Append through the writer; the future resolves after the commit.

        The arguments are those of `Recorder.append`. The future fails with
        `ConcurrencyError` on a version conflict and `StoreClosedError` once the
        writer has stopped (`pykka.ActorDeadError` if it stopped while this append
        was queued behind the stop).
        """
        if not self.ref.is_alive():
            return _failed(StoreClosedError("the event store writer is stopped"))
        return self._proxy.append(  # type: ignore[no-any-return]
            stream_id, expected_version, tuple(events), metadata=metadata,
            event_ids=tuple(event_ids) if event_ids is not None else None, blobs=tuple(blobs))

    def append_and_wait(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        metadata: Metadata | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (),
    ) -> AppendResult:
        """Append and block until committed: for other actors' threads, never for trio.

        When the writer owns a `SqliteRecorder` the request goes straight into its
        group commit from the calling thread (the writer actor keeps the recorder's
        lifecycle and counts the append); otherwise it is asked of the writer.

        Raises:
            ConcurrencyError: `expected_version` is not the stream's version.
            StoreClosedError: the writer has stopped.
        """
        if not self.ref.is_alive():
            raise StoreClosedError("the event store writer is stopped")
        if self._direct is None:
            try:
                result: AppendResult = self.append(stream_id, expected_version, events,
                                                   metadata=metadata, blobs=blobs).get()
            except pykka.ActorDeadError as exc:
                raise StoreClosedError("the event store writer is stopped") from exc
            return result
        recorder, tally = self._direct
        return _submit(recorder, tally, stream_id, expected_version, events,
                       metadata=metadata, blobs=blobs).result()

    def submit_append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        metadata: Metadata | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (),
        defer: bool = False,
    ) -> Future[AppendResult]:
        """Queue an append and return its commit future: for other actors' threads.

        The non-blocking form of `append_and_wait`: with a `SqliteRecorder` the
        request goes straight into its group commit from the calling thread and the
        future resolves on the commit thread (conflicts arrive on it); otherwise the
        writer is asked, blocking, and the returned future is already resolved.
        With `defer` (and a `SqliteRecorder`) the request waits for the caller's
        `commit_deferred()` instead of waking the writer thread.

        Raises:
            StoreClosedError: the writer has stopped.
            EventStoreError: the request itself is invalid (see `submit_append` of
                `SqliteRecorder`).
        """
        if not self.ref.is_alive():
            raise StoreClosedError("the event store writer is stopped")
        if self._direct is not None:
            recorder, tally = self._direct
            return _submit(recorder, tally, stream_id, expected_version, events,
                           metadata=metadata, blobs=blobs, defer=defer)
        done: PendingAppend[AppendResult] = PendingAppend()
        try:
            done.set_result(self.append_and_wait(stream_id, expected_version, events,
                                                 metadata=metadata, blobs=blobs))
        except StoreClosedError:
            raise
        except Exception as exc:  # noqa: BLE001  (the append's failure travels on its future)
            done.set_exception(exc)
        return done

    @property
    def submits_directly(self) -> bool:
        """True if `submit_append` queues into the recorder's group commit without
        waiting (a `SqliteRecorder`); False if it asks the writer and waits."""
        return self._direct is not None

    def commit_deferred(self, *, wait: bool = True) -> int:
        """Commit the appends submitted with `defer=True`, on this thread (see
        `SqliteRecorder.commit_deferred`, also for `wait`); returns how many there were."""
        if self._direct is None:
            return 0  # nothing is ever deferred without a SqliteRecorder
        return self._direct.recorder.commit_deferred(wait=wait)

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


class _Direct(NamedTuple):
    recorder: SqliteRecorder
    tally: _Tally


def _submit(
    recorder: SqliteRecorder,
    tally: _Tally,
    stream_id: str,
    expected_version: int,
    events: Sequence[Event],
    *,
    metadata: Metadata | None = None,
    event_ids: Sequence[str] | None = None,
    blobs: Iterable[tuple[BlobRef, bytes]] = (),
    defer: bool = False,
) -> Future[AppendResult]:
    """Queue one append on the recorder's group commit.

    The recorder counts what its commits answer (`SqliteRecorder.append_counts`);
    `tally` counts the requests refused before they were queued.
    """
    try:
        return recorder.submit_append(stream_id, expected_version, events, metadata=metadata,
                                      event_ids=event_ids, blobs=blobs, defer=defer)
    except Exception as exc:
        tally.add(stream_id, events, exc)
        raise


def _failed(exc: BaseException) -> TrioFuture[Any]:
    future: TrioFuture[Any] = TrioFuture()
    future.set_exception((type(exc), exc, None))
    return future
