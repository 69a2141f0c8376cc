"""`SqliteReads`: the queries of `SqliteRecorder`, each on the calling thread's connection.

Reads never go through the writer: WAL mode lets each thread read from its own
connection (`SqliteRecorder._reader`) while the writer commits.
"""

from __future__ import annotations

import zlib
from abc import abstractmethod
from typing import Any

import apsw

from eventstore._codec import BlobRef
from eventstore._errors import BlobNotFoundError, StoreBrokenError
from eventstore._recorder import RawEvent, Recorded, StreamInfo
from eventstore._registry import Event, EventRegistry
from eventstore._rows import decode_records

__all__ = ["SqliteReads"]

_RAW_COLUMNS = ("position, stream_id, seq, type, version, recorded_at, payload, metadata, "
                "event_id, hash")
_COLUMNS = "position, stream_id, seq, type, version, recorded_at, payload, metadata, event_id"


class SqliteReads:
    """The read side of the recorder contract over SQLite (see module docstring)."""

    registry: EventRegistry

    @abstractmethod
    def _reader(self) -> apsw.Connection:
        """This thread's read connection."""

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

    def _decoded(self, sql: str, args: tuple[Any, ...]) -> list[Recorded[Event]]:
        try:
            return decode_records(self.registry, self._reader().execute(sql, args))
        except apsw.Error as exc:
            raise StoreBrokenError(f"read failed: {exc}") from exc

    def read_stream(
        self, stream_id: str, from_seq: int = 1, to_seq: int | None = None
    ) -> list[Recorded[Event]]:
        """See `Recorder.read_stream`."""
        return self._decoded(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND seq >= ? AND seq <= ? "
            "ORDER BY seq", (stream_id, from_seq, to_seq if to_seq is not None else 2**62),
        )

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[Recorded[Event]]:
        """See `Recorder.read_all`."""
        return self._decoded(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after_position, limit),
        )

    def read_raw_log(self, after_position: int = 0, limit: int = 1000) -> list[RawEvent]:
        """Up to `limit` rows of the log after `after_position`, undecoded (for copies)."""
        return self._raw(f"SELECT {_RAW_COLUMNS} FROM events WHERE position > ? "
                         "ORDER BY position LIMIT ?", (after_position, limit))

    def raw_blobs(self, after: bytes = b"",
                  limit: int = 500) -> list[tuple[bytes, int, int, bytes]]:
        """Stored blob rows (digest, codec, size, data) with digest > `after`, in order."""
        rows: list[Any] = self._reader().execute(
            "SELECT digest, codec, size, data FROM blobs WHERE digest > ? ORDER BY digest "
            "LIMIT ?", (after, limit)).fetchall()
        return [(bytes(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in rows]

    def read_raw(self, stream_id: str) -> list[RawEvent]:
        """See `Recorder.read_raw`."""
        return self._raw(f"SELECT {_RAW_COLUMNS} FROM events WHERE stream_id = ? ORDER BY seq",
                         (stream_id,))

    def stream_head(self, stream_id: str) -> tuple[int, bytes] | None:
        """See `Recorder.stream_head` (the `streams` table, written with every commit)."""
        rows: list[Any] = self._reader().execute(
            "SELECT version, last_hash FROM streams WHERE stream_id = ?", (stream_id,)).fetchall()
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def headed_streams(self) -> list[str]:
        """See `Recorder.headed_streams`."""
        rows: list[Any] = self._reader().execute(
            "SELECT stream_id FROM streams ORDER BY stream_id").fetchall()
        return [str(r[0]) for r in rows]

    def stream_version(self, stream_id: str) -> int:
        """See `Recorder.stream_version`."""
        rows: list[Any] = self._reader().execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE stream_id = ?", (stream_id,)
        ).fetchall()
        return int(rows[0][0])

    def list_streams(self, prefix: str = "") -> list[StreamInfo]:
        """See `Recorder.list_streams` (built from the events table, not the heads)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows: list[Any] = self._reader().execute(
            "SELECT stream_id, max(seq), max(position), min(recorded_at), max(recorded_at) "
            "FROM events WHERE stream_id LIKE ? ESCAPE '\\' GROUP BY stream_id ORDER BY stream_id",
            (escaped + "%",),
        ).fetchall()
        return [StreamInfo(r[0], int(r[1]), int(r[2]), float(r[3]), float(r[4])) for r in rows]

    def get_blob(self, ref: BlobRef) -> bytes:
        """See `Recorder.get_blob`."""
        rows: list[Any] = self._reader().execute("SELECT codec, data FROM blobs WHERE digest = ?",
                                      (ref.digest,)).fetchall()
        if not rows:
            raise BlobNotFoundError(ref.hex)
        codec, data = rows[0]
        return zlib.decompress(data) if codec == 1 else bytes(data)

    def blob_stats(self) -> tuple[int, int]:
        """See `Recorder.blob_stats` (bytes as stored, after compression)."""
        rows: list[Any] = self._reader().execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM blobs").fetchall()
        return int(rows[0][0]), int(rows[0][1])

    def log_bytes(self) -> int:
        """Bytes held by event payloads and metadata (for storage-ratio measurements)."""
        rows: list[Any] = self._reader().execute(
            "SELECT coalesce(sum(length(payload) + length(metadata) + length(hash)), 0) "
            "FROM events").fetchall()
        return int(rows[0][0])
