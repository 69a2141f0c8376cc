"""`MemoryRecorder`: the recorder contract held in process memory, for unit tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

import structlog

from eventstore._codec import BlobRef
from eventstore._errors import (
    BlobNotFoundError,
    ConcurrencyError,
    EventStoreError,
    StoreClosedError,
)
from eventstore._pending import PendingAppend
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

__all__ = ["MemoryRecorder"]

log = structlog.get_logger()


class MemoryRecorder(Recorder):
    """A thread-safe in-memory recorder with the same semantics as `SqliteRecorder`."""

    def __init__(self, registry: EventRegistry | None = None) -> None:
        super().__init__(registry)
        self._lock = threading.Condition()
        self._log: list[RawEvent] = []
        self._streams: dict[str, list[RawEvent]] = {}
        self._ids: dict[str, RawEvent] = {}
        self._blobs: dict[bytes, bytes] = {}
        self._closed = False

    def _submit(self, stream_id: str, expected_version: int, events: Sequence[Event],
                metadata: Metadata | None, event_ids: Sequence[str] | None,
                blobs: Iterable[tuple[BlobRef, bytes]], defer: bool) -> PendingAppend[AppendResult]:
        """Append at once, on the caller's thread (see `Recorder.submit_append`); the
        future is resolved when it is returned. `defer` changes nothing here."""
        if self._closed:
            raise StoreClosedError("recorder is closed")
        done: PendingAppend[AppendResult] = PendingAppend()
        try:
            done.set_result(self._append(stream_id, expected_version, events, metadata,
                                         event_ids, list(blobs)))
        except EventStoreError as exc:  # conflicts and the like travel on the future
            done.set_exception(exc)
        return done

    def _append(self, stream_id: str, expected_version: int, events: Sequence[Event],
                metadata: Metadata | None, event_ids: Sequence[str] | None,
                blobs: list[tuple[BlobRef, bytes]]) -> AppendResult:
        with self._lock:
            if self._closed:
                raise StoreClosedError("recorder is closed")
            replay = self._replayed(stream_id, event_ids)
            if replay is not None:
                return replay
            stream = self._streams.get(stream_id, [])
            current = len(stream)
            if expected_version not in (ANY_VERSION, current):
                raise ConcurrencyError(stream_id, expected_version, current)
            rows = build_rows(
                self.registry, stream_id, current, stream[-1].hash if stream else None,
                events, metadata, event_ids, time.time(),
            )
            placed = []
            for row in rows:
                pos = len(self._log) + 1
                placed.append(_with_position(row, pos))
                self._log.append(placed[-1])
            self._streams.setdefault(stream_id, []).extend(placed)
            for row in placed:
                if row.event_id is not None:
                    self._ids[row.event_id] = row
            for ref, data in blobs:
                self._blobs.setdefault(ref.digest, data)
            last = len(self._log)
            self._lock.notify_all()
        self._announce(last)
        if not placed:
            return AppendResult(stream_id, current, last, last)
        return AppendResult(stream_id, placed[-1].seq, placed[0].position, placed[-1].position,
                            placed[-1].recorded_at)

    def _replayed(self, stream_id: str, event_ids: Sequence[str] | None) -> AppendResult | None:
        if not event_ids:
            return None
        found = [self._ids.get(i) for i in event_ids]
        if all(r is None for r in found):
            return None
        if any(r is None or r.stream_id != stream_id for r in found):
            raise EventStoreError("event ids were already used by a different append")
        rows = [r for r in found if r is not None]
        return AppendResult(stream_id, rows[-1].seq, rows[0].position, rows[-1].position,
                            rows[-1].recorded_at)

    def read_stream(
        self, stream_id: str, from_seq: int = 1, to_seq: int | None = None
    ) -> list[Recorded[Event]]:
        """See `Recorder.read_stream`."""
        with self._lock:
            rows = list(self._streams.get(stream_id, []))
        hi = to_seq if to_seq is not None else len(rows)
        return [decode_row(self.registry, r) for r in rows[max(from_seq, 1) - 1 : hi]]

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[Recorded[Event]]:
        """See `Recorder.read_all`."""
        with self._lock:
            rows = self._log[after_position : after_position + limit]
        return [decode_row(self.registry, r) for r in rows]

    def read_raw(self, stream_id: str) -> list[RawEvent]:
        """See `Recorder.read_raw`."""
        with self._lock:
            return list(self._streams.get(stream_id, []))

    def stream_version(self, stream_id: str) -> int:
        """See `Recorder.stream_version`."""
        with self._lock:
            return len(self._streams.get(stream_id, []))

    def list_streams(self, prefix: str = "") -> list[StreamInfo]:
        """See `Recorder.list_streams`."""
        with self._lock:
            return [
                StreamInfo(sid, len(rows), rows[-1].position, rows[0].recorded_at,
                           rows[-1].recorded_at)
                for sid, rows in sorted(self._streams.items())
                if sid.startswith(prefix) and rows
            ]

    def last_position(self) -> int:
        """See `Recorder.last_position`."""
        with self._lock:
            return len(self._log)

    def get_blob(self, ref: BlobRef) -> bytes:
        """See `Recorder.get_blob`."""
        with self._lock:
            try:
                return self._blobs[ref.digest]
            except KeyError:
                raise BlobNotFoundError(ref.hex) from None

    def blob_stats(self) -> tuple[int, int]:
        """See `Recorder.blob_stats`."""
        with self._lock:
            return len(self._blobs), sum(len(b) for b in self._blobs.values())

    @property
    def closed(self) -> bool:
        """See `Recorder.closed`."""
        return self._closed

    def wait_for_position(self, after_position: int, timeout: float | None) -> int:
        """See `Recorder.wait_for_position`."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._log) > after_position or self._closed,
                                timeout)
            return len(self._log)

    def close(self) -> None:
        """See `Recorder.close`."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()


def _with_position(row: RawEvent, position: int) -> RawEvent:
    return replace(row, position=position)
