"""`SqliteRecorder`: the recorder contract on an apsw SQLite file, with group commit.

One writer thread (`eventstore._writer.GroupWriter`) owns the only write connection.
`append` encodes the events in the caller's thread and hands a request to it, then
waits; the writer commits every queued request in one transaction (a request's
conflict fails that request alone), then wakes every caller. A caller that submits
many appends in a row may defer them and commit them itself (`submit_append(...,
defer=True)`, then `commit_deferred()`): same transaction rules, on its own thread,
serialized with the writer's commits; `commit_deferred(wait=False)` never waits
for a lock or a disk sync (it hands the appends to the writer thread instead).
Readers use one connection per thread.
WAL mode; `synchronous` is NORMAL (durable across a process crash, may lose the
last commits on power loss) or FULL (durable across power loss, slower). WAL
checkpoints run on a thread of their own (`eventstore._checkpoint`), not inside
the commit that fills the WAL.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import apsw
import structlog

from eventstore._checkpoint import DEFAULT_CHECKPOINT_PAGES, Checkpointer
from eventstore._codec import BlobRef
from eventstore._errors import StoreBrokenError, StoreClosedError
from eventstore._pending import PendingAppend
from eventstore._recorder import AppendResult, Metadata, Recorder
from eventstore._registry import Event, EventRegistry
from eventstore._rows import encode_events, encode_metadata
from eventstore._schema import migrate
from eventstore._sqlite_reads import SqliteReads
from eventstore._writer import BUSY_TIMEOUT_MS, STOP, AppendCounts, AppendRequest, GroupWriter

__all__ = ["Durability", "SqliteRecorder"]

log = structlog.get_logger()

Durability = Literal["NORMAL", "FULL"]


class SqliteRecorder(SqliteReads, Recorder):
    """Events and blobs in one SQLite file (see module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "NORMAL",
        registry: EventRegistry | None = None,
        checkpoint_pages: int = DEFAULT_CHECKPOINT_PAGES,
    ) -> None:
        """Open (creating or migrating) the database at `path` and start the writer.

        A WAL checkpoint is started on its own thread once the WAL holds
        `checkpoint_pages` pages after a commit.

        Raises:
            SchemaVersionError: the file was written by a newer Lynkr.
            StoreBrokenError: the file cannot be opened as a database.
        """
        super().__init__(registry)
        if durability not in ("NORMAL", "FULL"):
            raise ValueError(f"durability must be NORMAL or FULL, not {durability!r}")
        if checkpoint_pages < 1:
            raise ValueError(f"checkpoint_pages must be at least 1, got {checkpoint_pages!r}")
        self.path = os.fspath(path)
        self.durability = durability
        self._local = threading.local()
        self._readers: list[apsw.Connection] = []
        self._readers_lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._deferred: list[AppendRequest] = []  # see submit_append(defer=True)
        self._submit_lock = threading.Lock()
        self._cond = threading.Condition()
        self._closed = False
        try:
            conn = self._connect()
        except apsw.Error as exc:
            raise StoreBrokenError(f"cannot open {self.path}: {exc}") from exc
        try:
            migrate(conn, self.path)
            self._last_position = self._query_last_position(conn)
        except apsw.Error as exc:
            conn.close()
            raise StoreBrokenError(f"cannot open {self.path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        try:
            self._checkpointer = Checkpointer(self._connect(), pages=checkpoint_pages)
        except apsw.Error as exc:
            conn.close()
            raise StoreBrokenError(f"cannot open {self.path}: {exc}") from exc
        self._checkpointer.watch(conn)
        self._writer_conn = conn
        self._writer = GroupWriter(conn, self._advance, self._announce)
        self._thread = threading.Thread(target=self._write_loop, name="eventstore-writer",
                                        daemon=True)
        self._thread.start()

    # -- connections -------------------------------------------------------------
    def _connect(self) -> apsw.Connection:
        conn = apsw.Connection(self.path)
        conn.setbusytimeout(BUSY_TIMEOUT_MS)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.durability}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _reader(self) -> apsw.Connection:
        if self._closed:
            raise StoreClosedError("recorder is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @staticmethod
    def _query_last_position(conn: apsw.Connection) -> int:
        rows: list[Any] = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchall()
        return int(rows[0][0])

    # -- writing -----------------------------------------------------------------
    def _submit(self, stream_id: str, expected_version: int, events: Sequence[Event],
                metadata: Metadata | None, event_ids: Sequence[str] | None,
                blobs: Iterable[tuple[BlobRef, bytes]], defer: bool) -> PendingAppend[AppendResult]:
        """Queue the request for the next group commit (see `Recorder.submit_append`).

        The events are encoded here, in the caller's thread. With `defer`, the writer
        thread is not woken: the request waits until some thread calls
        `commit_deferred` (a caller that submits many appends in a row commits them
        itself, in one transaction, without two thread hand-overs per batch), or until
        `close`. Whoever defers must see that it is called.
        """
        encoded = encode_events(self.registry, events)
        meta, meta_digest = encode_metadata(metadata)
        known = self._writer.known_blobs
        request = AppendRequest(stream_id, expected_version, encoded, meta, meta_digest,
                                tuple(event_ids) if event_ids else None,
                                [b for b in blobs if b[0].digest not in known] if blobs else [])
        with self._submit_lock:
            if self._closed:
                raise StoreClosedError("recorder is closed")
            if defer:
                self._deferred.append(request)
            else:
                self._queue.put(request)
        return request.future

    def commit_deferred(self, *, wait: bool = True) -> int:
        """Commit every deferred append now, on this thread, in one transaction.

        With `wait=False` (for a thread that must not block, such as trio's) it never
        waits: if the commit cannot start at once (another thread is committing,
        another process holds the write lock) or would sync to disk (FULL), the
        writer thread gets the appends instead and resolves their futures.

        Returns:
            How many deferred requests it took: 0 if none waited.
        """
        with self._submit_lock:
            batch, self._deferred = self._deferred, []
        if not batch:
            return 0
        if wait:
            self._writer.commit(batch)
        elif self.durability == "FULL" or not self._writer.try_commit(batch):
            with self._submit_lock:
                handed = not self._closed  # else the writer has its STOP: commit them here
                for request in batch if handed else ():
                    self._queue.put(request)
            if not handed:
                self._writer.commit(batch)
        return len(batch)

    @property
    def batches(self) -> int:
        """Transactions committed by the writer so far."""
        return self._writer.batches

    @property
    def batched_requests(self) -> int:
        """Append requests those transactions carried."""
        return self._writer.batched_requests

    @property
    def checkpoints(self) -> int:
        """WAL checkpoints run so far (on the checkpoint thread)."""
        return self._checkpointer.checkpoints

    def wait_checkpointed(self, timeout: float | None = None) -> bool:
        """Wait until no WAL checkpoint is wanted or running (for tests and tools)."""
        return self._checkpointer.wait_idle(timeout)

    @property
    def append_counts(self) -> AppendCounts:
        """Requests the writer committed, refused as conflicts or failed, and their events."""
        return self._writer.counts

    def _advance(self, last_position: int) -> None:
        with self._cond:
            self._last_position = max(self._last_position, last_position)
            self._cond.notify_all()

    def _write_loop(self) -> None:
        try:
            self._writer.run(self._queue)
        finally:
            with self._writer.lock:  # not under a commit_deferred caller still committing
                self._writer_conn.close()

    # -- reading (the queries: `eventstore._sqlite_reads`) --------------------
    def last_position(self) -> int:
        """See `Recorder.last_position`."""
        with self._cond:
            return self._last_position

    # -- following ---------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """See `Recorder.closed`."""
        return self._closed

    def wait_for_position(self, after_position: int, timeout: float | None) -> int:
        """See `Recorder.wait_for_position`."""
        with self._cond:
            self._cond.wait_for(lambda: self._last_position > after_position or self._closed,
                                timeout)
            return self._last_position

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Commit what is queued, stop the writer, close every connection."""
        with self._submit_lock, self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        with self._submit_lock:
            for request in self._deferred:  # nobody is left to commit them: the writer does
                self._queue.put(request)
            self._deferred = []
            self._queue.put(STOP)
        self._thread.join()
        self._checkpointer.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
