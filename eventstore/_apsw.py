"""`SqliteRecorder`: the recorder contract on an apsw SQLite file, with group commit.

One writer thread owns the only write connection. `append` hands a request to it and
waits; the writer drains every request that is queued, runs them in one transaction
(each in its own savepoint, so one request's conflict does not sink the others),
commits once, then wakes every caller. Readers use one connection per thread.
WAL mode; `synchronous` is NORMAL (durable across a process crash, may lose the
last commits on power loss) or FULL (durable across power loss, slower).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

import apsw
import structlog

from eventstore._codec import BlobRef
from eventstore._errors import (
    BlobNotFoundError,
    ConcurrencyError,
    EventStoreError,
    StoreBrokenError,
    StoreClosedError,
)
from eventstore._recorder import (
    ANY_VERSION,
    AppendResult,
    Metadata,
    RawEvent,
    Recorded,
    Recorder,
    StreamInfo,
)
from eventstore._registry import Event, EventRegistry
from eventstore._rows import build_rows, decode_row
from eventstore._schema import migrate

__all__ = ["Durability", "SqliteRecorder"]

log = structlog.get_logger()

Durability = Literal["NORMAL", "FULL"]
_MAX_BATCH = 512
_COMPRESS_OVER = 1024
_RAW_COLUMNS = ("position, stream_id, seq, type, version, recorded_at, payload, metadata, "
                "event_id, hash")


@dataclass(slots=True)
class _AppendRequest:
    stream_id: str
    expected_version: int
    events: Sequence[Event]
    metadata: Metadata | None
    event_ids: Sequence[str] | None
    blobs: list[tuple[BlobRef, bytes]]
    future: Future[AppendResult] = field(default_factory=Future)


_STOP = object()


class SqliteRecorder(Recorder):
    """Events and blobs in one SQLite file (see module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "NORMAL",
        registry: EventRegistry | None = None,
    ) -> None:
        """Open (creating or migrating) the database at `path` and start the writer.

        Raises:
            SchemaVersionError: the file was written by a newer Lynkr.
            StoreBrokenError: the file cannot be opened as a database.
        """
        super().__init__(registry)
        if durability not in ("NORMAL", "FULL"):
            raise ValueError(f"durability must be NORMAL or FULL, not {durability!r}")
        self.path = os.fspath(path)
        self.durability = durability
        self._local = threading.local()
        self._readers: list[apsw.Connection] = []
        self._readers_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_AppendRequest | object] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._listeners: list[Callable[[int], None]] = []
        self._closed = False
        self._heads: dict[str, tuple[int, bytes]] = {}
        self.batches = 0
        self.batched_requests = 0
        try:
            self._writer_conn = self._connect()
            migrate(self._writer_conn, self.path)
            self._last_position = self._query_last_position(self._writer_conn)
        except apsw.Error as exc:
            raise StoreBrokenError(f"cannot open {self.path}: {exc}") from exc
        self._thread = threading.Thread(target=self._write_loop, name="eventstore-writer",
                                        daemon=True)
        self._thread.start()

    # -- connections -------------------------------------------------------------
    def _connect(self) -> apsw.Connection:
        conn = apsw.Connection(self.path)
        conn.setbusytimeout(10_000)
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
        return int(conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchall()[0][0])

    # -- writing -----------------------------------------------------------------
    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        metadata: Metadata | None = None,
        event_ids: Sequence[str] | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (),
    ) -> AppendResult:
        """See `Recorder.append`."""
        return self.submit_append(
            stream_id, expected_version, events, metadata=metadata, event_ids=event_ids,
            blobs=blobs,
        ).result()

    def submit_append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        metadata: Metadata | None = None,
        event_ids: Sequence[str] | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (),
    ) -> Future[AppendResult]:
        """Queue an append for the next group commit; the future resolves after commit."""
        if event_ids is not None and len(event_ids) != len(events):
            raise EventStoreError("event_ids must give one id per event")
        request = _AppendRequest(stream_id, expected_version, events, metadata, event_ids,
                                 list(blobs))
        if self._closed:
            raise StoreClosedError("recorder is closed")
        self._queue.put(request)
        return request.future

    def _write_loop(self) -> None:
        conn = self._writer_conn
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[_AppendRequest] = []
            for item in _drain(first, self._queue):
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            if batch:
                self._commit_batch(conn, batch)
        conn.close()

    def _commit_batch(self, conn: apsw.Connection, batch: list[_AppendRequest]) -> None:
        outcomes: list[AppendResult | BaseException] = []
        overlay: dict[str, tuple[int, bytes]] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for req in batch:
                    outcomes.append(self._apply(conn, req, overlay))
                conn.execute("COMMIT")
            except BaseException:
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                raise
        except apsw.Error as exc:
            self._heads.clear()
            log.error("eventstore_commit_failed", error=str(exc), requests=len(batch))
            broken = StoreBrokenError(f"commit failed: {exc}")
            for req in batch:
                req.future.set_exception(broken)
            return
        self._heads.update(overlay)
        self.batches += 1
        self.batched_requests += len(batch)
        last = max((o.last_position for o in outcomes if isinstance(o, AppendResult)),
                   default=0)
        with self._cond:
            self._last_position = max(self._last_position, last)
            self._cond.notify_all()
            listeners = list(self._listeners)
        for req, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                req.future.set_exception(outcome)
            else:
                req.future.set_result(outcome)
        for callback in listeners:
            callback(self._last_position)

    def _apply(
        self, conn: apsw.Connection, req: _AppendRequest, overlay: dict[str, tuple[int, bytes]]
    ) -> AppendResult | BaseException:
        conn.execute("SAVEPOINT req")
        try:
            result = self._insert(conn, req, overlay)
        except (EventStoreError, TypeError, ValueError) as exc:
            # The request is wrong, not the database: undo it alone, keep the batch.
            conn.execute("ROLLBACK TO req")
            conn.execute("RELEASE req")
            return exc
        conn.execute("RELEASE req")
        return result

    def _insert(
        self, conn: apsw.Connection, req: _AppendRequest, overlay: dict[str, tuple[int, bytes]]
    ) -> AppendResult:
        replay = self._replayed(conn, req)
        if replay is not None:
            return replay
        version, last_hash = self._head(conn, req.stream_id, overlay)
        if req.expected_version not in (ANY_VERSION, version):
            raise ConcurrencyError(req.stream_id, req.expected_version, version)
        rows = build_rows(self.registry, req.stream_id, version, last_hash or None, req.events,
                          req.metadata, req.event_ids, time.time())
        first = last = 0
        for row in rows:
            conn.execute(
                "INSERT INTO events (stream_id, seq, type, version, recorded_at, payload, "
                "metadata, hash, event_id) VALUES (?,?,?,?,?,?,?,?,?)",
                (row.stream_id, row.seq, row.type_name, row.version, row.recorded_at,
                 row.payload, row.metadata, row.hash, row.event_id),
            )
            last = conn.last_insert_rowid()
            first = first or last
        for ref, data in req.blobs:
            self._insert_blob(conn, ref, data)
        if rows:
            head = (rows[-1].seq, rows[-1].hash)
            conn.execute("INSERT OR REPLACE INTO streams VALUES (?,?,?)",
                         (req.stream_id, head[0], head[1]))
            overlay[req.stream_id] = head
            return AppendResult(req.stream_id, head[0], first, last)
        return AppendResult(req.stream_id, version, self._last_position, self._last_position)

    def _head(
        self, conn: apsw.Connection, stream_id: str, overlay: dict[str, tuple[int, bytes]]
    ) -> tuple[int, bytes]:
        head = overlay.get(stream_id) or self._heads.get(stream_id)
        if head is None:
            rows = conn.execute("SELECT version, last_hash FROM streams WHERE stream_id = ?",
                                (stream_id,)).fetchall()
            head = (int(rows[0][0]), bytes(rows[0][1])) if rows else (0, b"")
            self._heads[stream_id] = head
        return head

    def _replayed(self, conn: apsw.Connection, req: _AppendRequest) -> AppendResult | None:
        if not req.event_ids:
            return None
        found = conn.execute(
            "SELECT stream_id, seq, position FROM events WHERE event_id = ?",
            (req.event_ids[0],),
        ).fetchall()
        if not found:
            return None
        placeholders = ",".join("?" * len(req.event_ids))
        rows = conn.execute(
            f"SELECT stream_id, seq, position FROM events WHERE event_id IN ({placeholders}) "
            "ORDER BY position", tuple(req.event_ids),
        ).fetchall()
        if len(rows) != len(req.event_ids) or any(r[0] != req.stream_id for r in rows):
            raise EventStoreError("event ids were already used by a different append")
        return AppendResult(req.stream_id, rows[-1][1], rows[0][2], rows[-1][2])

    @staticmethod
    def _insert_blob(conn: apsw.Connection, ref: BlobRef, data: bytes) -> None:
        exists = conn.execute("SELECT 1 FROM blobs WHERE digest = ?", (ref.digest,)).fetchall()
        if exists:
            return
        codec, stored = 0, data
        if len(data) > _COMPRESS_OVER:
            packed = zlib.compress(data, 6)
            if len(packed) < len(data):
                codec, stored = 1, packed
        conn.execute("INSERT INTO blobs VALUES (?,?,?,?)", (ref.digest, codec, len(data), stored))

    # -- reading -----------------------------------------------------------------
    def _raw(self, sql: str, args: tuple[Any, ...]) -> list[RawEvent]:
        try:
            cursor = self._reader().execute(sql, args)
            return [
                RawEvent(position=r[0], stream_id=r[1], seq=r[2], type_name=r[3], version=r[4],
                         recorded_at=r[5], payload=bytes(r[6]), metadata=bytes(r[7]),
                         event_id=r[8], hash=bytes(r[9]))
                for r in cursor
            ]
        except apsw.Error as exc:
            raise StoreBrokenError(f"read failed: {exc}") from exc

    def read_stream(
        self, stream_id: str, from_seq: int = 1, to_seq: int | None = None
    ) -> list[Recorded[Event]]:
        """See `Recorder.read_stream`."""
        rows = self._raw(
            f"SELECT {_RAW_COLUMNS} FROM events WHERE stream_id = ? AND seq >= ? AND seq <= ? "
            "ORDER BY seq", (stream_id, from_seq, to_seq if to_seq is not None else 2**62),
        )
        return [decode_row(self.registry, r) for r in rows]

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[Recorded[Event]]:
        """See `Recorder.read_all`."""
        rows = self._raw(
            f"SELECT {_RAW_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after_position, limit),
        )
        return [decode_row(self.registry, r) for r in rows]

    def read_raw(self, stream_id: str) -> list[RawEvent]:
        """See `Recorder.read_raw`."""
        return self._raw(f"SELECT {_RAW_COLUMNS} FROM events WHERE stream_id = ? ORDER BY seq",
                         (stream_id,))

    def stream_version(self, stream_id: str) -> int:
        """See `Recorder.stream_version`."""
        rows = self._reader().execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE stream_id = ?", (stream_id,)
        ).fetchall()
        return int(rows[0][0])

    def list_streams(self, prefix: str = "") -> list[StreamInfo]:
        """See `Recorder.list_streams` (built from the events table, not the heads)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._reader().execute(
            "SELECT stream_id, max(seq), max(position), min(recorded_at), max(recorded_at) "
            "FROM events WHERE stream_id LIKE ? ESCAPE '\\' GROUP BY stream_id ORDER BY stream_id",
            (escaped + "%",),
        ).fetchall()
        return [StreamInfo(r[0], int(r[1]), int(r[2]), float(r[3]), float(r[4])) for r in rows]

    def last_position(self) -> int:
        """See `Recorder.last_position`."""
        with self._cond:
            return self._last_position

    def get_blob(self, ref: BlobRef) -> bytes:
        """See `Recorder.get_blob`."""
        rows = self._reader().execute("SELECT codec, data FROM blobs WHERE digest = ?",
                                      (ref.digest,)).fetchall()
        if not rows:
            raise BlobNotFoundError(ref.hex)
        codec, data = rows[0]
        return zlib.decompress(data) if codec == 1 else bytes(data)

    def blob_stats(self) -> tuple[int, int]:
        """See `Recorder.blob_stats` (bytes as stored, after compression)."""
        rows = self._reader().execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM blobs").fetchall()
        return int(rows[0][0]), int(rows[0][1])

    def log_bytes(self) -> int:
        """Bytes held by event payloads and metadata (for storage-ratio measurements)."""
        rows = self._reader().execute(
            "SELECT coalesce(sum(length(payload) + length(metadata) + length(hash)), 0) "
            "FROM events").fetchall()
        return int(rows[0][0])

    # -- following ---------------------------------------------------------------
    def wait_for_position(self, after_position: int, timeout: float | None) -> int:
        """See `Recorder.wait_for_position`."""
        with self._cond:
            self._cond.wait_for(lambda: self._last_position > after_position or self._closed,
                                timeout)
            return self._last_position

    def add_commit_listener(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """See `Recorder.add_commit_listener`."""
        with self._cond:
            self._listeners.append(callback)

        def remove() -> None:
            with self._cond:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return remove

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Commit what is queued, stop the writer, close every connection."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._queue.put(_STOP)
        self._thread.join()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()


def _drain(first: object, q: queue.SimpleQueue[Any]) -> list[Any]:
    items = [first]
    while len(items) < _MAX_BATCH:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            break
    return items
