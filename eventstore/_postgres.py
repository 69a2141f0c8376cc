"""`PostgresRecorder`: the recorder contract on PostgreSQL, shared by several gateways.

Appends go through one writer thread per recorder (`eventstore._pg_writer.PgWriter`,
group commit, positions committed in order across processes). Reads use a small
psycopg connection pool, on the calling thread. One listener thread holds a
connection that LISTENs on the log's channel: each commit (of this process or any
other) NOTIFYs it with the log's last position, which wakes `wait_for_position`,
`follow` and the commit listeners, without polling the tables.

Durability is the server's: PostgreSQL's `synchronous_commit` (on by default) decides
whether a commit survives the server's crash; an acknowledged append always survives
the crash of the process that made it. The `durability` argument is accepted for
the factory's sake and does not change that.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, LiteralString

import psycopg
import psycopg_pool
import structlog

from eventstore._codec import BlobRef
from eventstore._errors import BlobNotFoundError, StoreBrokenError, StoreClosedError
from eventstore._open import redact_url
from eventstore._pending import PendingAppend
from eventstore._pg_schema import channel_name, migrate_pg
from eventstore._pg_writer import PgWriter
from eventstore._recorder import AppendResult, Metadata, RawEvent, Recorded, Recorder, StreamInfo
from eventstore._registry import Event, EventRegistry
from eventstore._rows import decode_records, encode_events, encode_metadata
from eventstore._writer import STOP, AppendCounts, AppendRequest

__all__ = ["PostgresRecorder"]

log = structlog.get_logger()

_COLUMNS = "position, stream_id, seq, type, version, recorded_at, payload, metadata, event_id"
_LISTEN_RETRY = 1.0  # seconds between attempts to get the listener's connection back


class PostgresRecorder(Recorder):
    """Events and blobs in a PostgreSQL database (see module docstring)."""

    shared = True  # N gateways append to one database

    def __init__(self, url: str, *, durability: str = "NORMAL",
                 registry: EventRegistry | None = None, pool_size: int = 4) -> None:
        """Connect to `url` (a libpq URL), create or migrate the schema, start the writer
        and the listener.

        Raises:
            SchemaVersionError: the database was written by a newer Lynkr.
            StoreBrokenError: the database cannot be reached.
        """
        super().__init__(registry)
        if durability not in ("NORMAL", "FULL"):
            raise ValueError(f"durability must be NORMAL or FULL, not {durability!r}")
        self.url = url
        self.durability = durability
        self._cond = threading.Condition()
        self._announce_lock = threading.Lock()  # one announcement of each commit (`_publish`)
        self._closed = False
        self._submit_lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        try:
            listener = self._connect()
        except psycopg.Error as exc:
            raise StoreBrokenError(f"cannot open {redact_url(url)}: {exc}") from exc
        try:
            schema = migrate_pg(listener, redact_url(url))
            self.channel = channel_name(schema)
            listener.execute(f"LISTEN {self.channel}".encode())
            self._last_position = self._query_last_position(listener)
            self._pool = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=pool_size, kwargs={"autocommit": True},
                open=True, name="lynkr-eventstore")
        except psycopg.Error as exc:
            listener.close()
            raise StoreBrokenError(f"cannot open {redact_url(url)}: {exc}") from exc
        except BaseException:
            listener.close()
            raise
        self._writer = PgWriter(self._connect, self.channel, self._publish, _ignore)
        self._writer.next_position = self._last_position + 1
        self._threads = [
            threading.Thread(target=self._writer.run, args=(self._queue,),
                             name="eventstore-writer", daemon=True),
            threading.Thread(target=self._listen, args=(listener,),
                             name="eventstore-listener", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    @staticmethod
    def _query_last_position(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT position FROM log_head WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    # -- writing -----------------------------------------------------------------
    def _submit(self, stream_id: str, expected_version: int, events: Sequence[Event],
                metadata: Metadata | None, event_ids: Sequence[str] | None,
                blobs: Iterable[tuple[BlobRef, bytes]], defer: bool) -> PendingAppend[AppendResult]:
        """Queue the request for the writer's next group commit (`defer` is ignored:
        every append is committed by the writer thread)."""
        encoded = encode_events(self.registry, events)
        meta, meta_digest = encode_metadata(metadata)
        known = self._writer.known_blobs
        request = AppendRequest(stream_id, expected_version, encoded, meta, meta_digest,
                                tuple(event_ids) if event_ids else None,
                                [b for b in blobs if b[0].digest not in known] if blobs else [])
        with self._submit_lock:
            if self._closed:
                raise StoreClosedError("recorder is closed")
            self._queue.put(request)
        return request.future

    @property
    def batches(self) -> int:
        """Transactions committed by the writer so far."""
        return self._writer.batches

    @property
    def append_counts(self) -> AppendCounts:
        """Requests the writer committed, refused as conflicts or failed, and their events."""
        return self._writer.counts

    def _publish(self, position: int) -> None:
        """The log ends at `position` at least: wake the waiters, tell the listeners.

        Our own commits reach here twice, from the writer and as their NOTIFY; the
        first announces them and the other finds nothing new. The lock keeps the
        writer waiting while the listener thread announces, so the commit listeners
        have heard of a commit before its appends return.
        """
        with self._announce_lock:
            with self._cond:
                if position <= self._last_position:
                    return
                self._last_position = position
                self._cond.notify_all()
            self._announce(position)

    # -- reading -----------------------------------------------------------------
    def _rows(self, sql: LiteralString, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._closed:
            raise StoreClosedError("recorder is closed")
        try:
            with self._pool.connection() as conn, conn.cursor(binary=True) as cur:
                return cur.execute(sql, args).fetchall()
        except psycopg.Error as exc:
            raise StoreBrokenError(f"read failed: {exc}") from exc

    def read_stream(
        self, stream_id: str, from_seq: int = 1, to_seq: int | None = None
    ) -> list[Recorded[Event]]:
        """See `Recorder.read_stream`."""
        return decode_records(self.registry, self._rows(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s AND seq >= %s AND seq <= %s "
            "ORDER BY seq", (stream_id, from_seq, to_seq if to_seq is not None else 2**62)))

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[Recorded[Event]]:
        """See `Recorder.read_all` (positions commit in order: nothing is skipped)."""
        return decode_records(self.registry, self._rows(
            f"SELECT {_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s",
            (after_position, limit)))

    def read_raw(self, stream_id: str) -> list[RawEvent]:
        """See `Recorder.read_raw`."""
        return [_raw(r) for r in self._rows(
            f"SELECT {_COLUMNS}, hash FROM events WHERE stream_id = %s ORDER BY seq",
            (stream_id,))]

    def read_raw_log(self, after_position: int = 0, limit: int = 1000) -> list[RawEvent]:
        """Up to `limit` rows of the log after `after_position`, undecoded (for copies)."""
        return [_raw(r) for r in self._rows(
            f"SELECT {_COLUMNS}, hash FROM events WHERE position > %s ORDER BY position "
            "LIMIT %s", (after_position, limit))]

    def stream_head(self, stream_id: str) -> tuple[int, bytes] | None:
        """See `Recorder.stream_head` (the `streams` table, written with every commit)."""
        rows = self._rows("SELECT version, last_hash FROM streams WHERE stream_id = %s",
                          (stream_id,))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def headed_streams(self) -> list[str]:
        """See `Recorder.headed_streams`."""
        return [str(r[0]) for r in self._rows("SELECT stream_id FROM streams ORDER BY stream_id",
                                              ())]

    def stream_version(self, stream_id: str) -> int:
        """See `Recorder.stream_version`."""
        rows = self._rows("SELECT version FROM streams WHERE stream_id = %s", (stream_id,))
        return int(rows[0][0]) if rows else 0

    def list_streams(self, prefix: str = "") -> list[StreamInfo]:
        """See `Recorder.list_streams` (built from the events, not the heads)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._rows(
            "SELECT stream_id, max(seq), max(position), min(recorded_at), max(recorded_at) "
            "FROM events WHERE stream_id LIKE %s GROUP BY stream_id ORDER BY stream_id",
            (escaped + "%",))
        return [StreamInfo(r[0], int(r[1]), int(r[2]), float(r[3]), float(r[4])) for r in rows]

    def last_position(self) -> int:
        """See `Recorder.last_position` (read from the database: other gateways append too)."""
        rows = self._rows("SELECT position FROM log_head WHERE id = 1", ())
        return int(rows[0][0]) if rows else 0

    def get_blob(self, ref: BlobRef) -> bytes:
        """See `Recorder.get_blob`."""
        rows = self._rows("SELECT codec, data FROM blobs WHERE digest = %s", (ref.digest,))
        if not rows:
            raise BlobNotFoundError(ref.hex)
        codec, data = rows[0]
        return zlib.decompress(data) if codec == 1 else bytes(data)

    def blob_stats(self) -> tuple[int, int]:
        """See `Recorder.blob_stats` (bytes as stored, after compression)."""
        rows = self._rows("SELECT count(*), coalesce(sum(length(data)), 0) FROM blobs", ())
        return int(rows[0][0]), int(rows[0][1])

    def raw_blobs(self, after: bytes = b"",
                  limit: int = 500) -> list[tuple[bytes, int, int, bytes]]:
        """Stored blob rows (digest, codec, size, data) with digest > `after`, in order."""
        return [(bytes(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in self._rows(
            "SELECT digest, codec, size, data FROM blobs WHERE digest > %s ORDER BY digest "
            "LIMIT %s", (after, limit))]

    # -- copying (`lynkr migrate`) ---------------------------------------------------
    def import_log(self, rows: Sequence[RawEvent],
                   blobs: Iterable[tuple[bytes, int, int, bytes]] = ()) -> int:
        """Store rows copied from another log as they are (positions, hashes, event ids),
        with their blob rows, in one transaction; returns the log's new last position.

        Raises:
            StoreBrokenError: the rows do not continue this log (a position at or below
                its last one, or a taken (stream, seq)), or the database failed.
        """
        if self._closed:
            raise StoreClosedError("recorder is closed")
        heads: dict[str, tuple[int, bytes]] = {}
        for row in rows:
            heads[row.stream_id] = (row.seq, row.hash)
        try:
            with self._connect() as conn, conn.transaction(), conn.cursor() as cur:
                top = cur.execute("SELECT position FROM log_head WHERE id = 1 FOR UPDATE"
                                  ).fetchone()
                last = int(top[0]) if top else 0
                if rows and rows[0].position <= last:
                    raise StoreBrokenError(f"position {rows[0].position} is not after this "
                                           f"log's last position {last}")
                cur.executemany("INSERT INTO blobs VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                                list(blobs))
                cur.executemany(
                    "INSERT INTO events (position, stream_id, seq, type, version, recorded_at, "
                    "payload, metadata, hash, event_id) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    [(r.position, r.stream_id, r.seq, r.type_name, r.version, r.recorded_at,
                      r.payload, r.metadata, r.hash, r.event_id) for r in rows])
                cur.executemany("INSERT INTO streams VALUES (%s,%s,%s) ON CONFLICT (stream_id) "
                                "DO UPDATE SET version = excluded.version, "
                                "last_hash = excluded.last_hash",
                                [(sid, v, h) for sid, (v, h) in heads.items()])
                last = max(last, rows[-1].position) if rows else last
                cur.execute("UPDATE log_head SET position = %s WHERE id = 1", (last,))
                cur.execute("SELECT pg_notify(%s, %s)", (self.channel, str(last)))
        except psycopg.Error as exc:
            raise StoreBrokenError(f"import failed: {exc}") from exc
        self._writer.next_position = 0  # the writer reloads its heads before its next batch
        return last

    # -- following ---------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """See `Recorder.closed`."""
        return self._closed

    def wait_for_position(self, after_position: int, timeout: float | None) -> int:
        """See `Recorder.wait_for_position` (woken by NOTIFY from any process)."""
        with self._cond:
            self._cond.wait_for(lambda: self._last_position > after_position or self._closed,
                                timeout)
            return self._last_position

    def _listen(self, conn: psycopg.Connection[Any] | None) -> None:
        """The listener thread: hand every notified position on until closed."""
        while conn is not None and not self._closed:
            try:
                for note in conn.notifies():
                    if self._closed:
                        break
                    if note.payload.isdigit():
                        self._publish(int(note.payload))
            except psycopg.Error as exc:
                conn.close()
                conn = self._relisten(exc)
        if conn is not None:
            conn.close()

    def _relisten(self, error: psycopg.Error) -> psycopg.Connection[Any] | None:
        """A new listening connection after the old one failed, tried every second while
        the server is unreachable (None once closed); catches up with commits missed."""
        log.warning("eventstore_listener_lost", error=str(error))
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._closed, _LISTEN_RETRY):
                    return None
            try:
                conn = self._connect()
                conn.execute(f"LISTEN {self.channel}".encode())
                self._publish(self._query_last_position(conn))
            except psycopg.Error as exc:
                log.warning("eventstore_listener_retry", error=str(exc))
                continue
            return conn

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Commit what is queued, stop the writer and the listener, close the pool."""
        with self._submit_lock, self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            self._queue.put(STOP)
        self._threads[0].join()
        try:  # wake our listener (any other process's ignores an empty note)
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_notify(%s, '')", (self.channel,))
        except psycopg.Error:
            log.warning("eventstore_listener_not_woken")
        self._threads[1].join(timeout=5)
        self._pool.close()


def _ignore(position: int) -> None:
    """The writer's `announce`: `_publish`, its `advance`, has announced already."""


def _raw(r: Sequence[Any]) -> RawEvent:
    return RawEvent(position=r[0], stream_id=r[1], seq=r[2], type_name=r[3], version=r[4],
                    recorded_at=r[5], payload=bytes(r[6]), metadata=bytes(r[7]),
                    event_id=r[8], hash=bytes(r[9]))
