"""The group-commit writer behind `SqliteRecorder`: one thread, one connection.

Callers encode their events in their own thread and queue an `AppendRequest`. The
writer drains every queued request, checks each one against the stream heads in
Python (expected version, event ids), places the accepted ones (positions, sequence
numbers, hash chain) and writes the whole batch with a few `executemany` calls in
one transaction. A rejected request (conflict, reused event ids) gets its error
and takes nothing from its batch mates. Futures resolve only after `COMMIT`.

If SQLite itself fails mid-batch, the batch is rolled back and each request is
retried alone, so a failure is reported only to the request that causes it.
`PRAGMA data_version` tells the writer when another connection (another process)
committed, and then it forgets its cached heads.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from hashlib import sha256
from typing import Any, NamedTuple

import apsw
import structlog

from eventstore._codec import BlobRef
from eventstore._errors import ConcurrencyError, EventStoreError, StoreBrokenError
from eventstore._pending import PendingAppend, resolve_all
from eventstore._recorder import ANY_VERSION, AppendResult
from eventstore._recorder import append_result as _result
from eventstore._rows import EncodedEvent

__all__ = ["STOP", "AppendCounts", "AppendRequest", "GroupWriter"]

log = structlog.get_logger()

STOP = object()
"""Queue sentinel: commit what came before it, then end the writer loop."""

_MAX_BATCH = 1024
_COMPRESS_OVER = 1024
_KNOWN_BLOBS_LIMIT = 100_000
_GENESIS = bytes(32)  # the "previous hash" of a stream's first event
_PARTS_LIMIT = 10_000
_STREAM_PARTS: dict[str, bytes] = {}  # only the writer thread touches these two
_TYPE_PARTS: dict[tuple[str, int], bytes] = {}
_INSERT_EVENT = (
    "INSERT INTO events (position, stream_id, seq, type, version, recorded_at, payload, "
    "metadata, hash, event_id) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
Outcome = AppendResult | EventStoreError


class AppendCounts(NamedTuple):
    """What the writer's commits answered, by kind, since it started."""

    appends: int  # requests committed
    events: int  # events those requests carried
    conflicts: int  # requests refused with ConcurrencyError
    failures: int  # requests that failed otherwise at commit


class AppendRequest:
    """One caller's append, already encoded, waiting for a group commit."""

    __slots__ = ("blobs", "encoded", "event_ids", "expected_version", "future", "metadata",
                 "metadata_digest", "stream_id")

    def __init__(
        self,
        stream_id: str,
        expected_version: int,
        encoded: list[EncodedEvent],
        metadata: bytes,
        metadata_digest: bytes,
        event_ids: Sequence[str] | None,
        blobs: list[tuple[BlobRef, bytes]],
    ) -> None:
        """A request whose `future` the writer resolves after its commit."""
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.encoded = encoded
        self.metadata = metadata
        self.metadata_digest = metadata_digest
        self.event_ids = event_ids
        self.blobs = blobs
        self.future: PendingAppend[AppendResult] = PendingAppend()


class _Batch:
    """The rows, heads, event ids and blobs one transaction will write."""

    def __init__(self, writer: GroupWriter, recorded_at: float) -> None:
        self.writer = writer
        self.recorded_at = recorded_at
        self.next_position = writer.next_position
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.rows: list[tuple[object, ...]] = []
        self.ids: dict[str, tuple[str, int, int, float]] = {}
        self.blobs: dict[bytes, bytes] = {}
        # What `add` answered, counted as it answers (kept only if the batch commits).
        self.appends = self.events = self.conflicts = self.failures = 0

    def place(self, batch: list[AppendRequest]) -> list[Outcome]:
        """Check each request in order and place its rows; each gets its result or error.

        One loop over the batch with everything in locals: this runs for every
        append, and attribute traffic on `self` per request cost more than the checks.
        """
        heads, head, rows, ids_placed = self.heads, self.writer.head, self.rows, self.ids
        known = self.writer.known_blobs
        recorded_at, position = self.recorded_at, self.next_position
        outcomes: list[Outcome] = []
        appends = events = 0
        for req in batch:
            stream_id = req.stream_id
            if req.event_ids:
                try:
                    replay = self._replayed(req)
                except EventStoreError as exc:
                    outcomes.append(self._failed(req, exc))
                    continue
                if replay is not None:
                    appends += 1
                    events += len(req.encoded)
                    outcomes.append(replay)
                    continue
            version, previous = heads.get(stream_id) or head(stream_id)
            expected = req.expected_version
            if expected != version and expected != ANY_VERSION:
                self.conflicts += 1
                outcomes.append(ConcurrencyError(stream_id, expected, version))
                continue
            encoded = req.encoded
            appends += 1
            if not encoded:
                outcomes.append(_result(stream_id, version, position - 1, position - 1, None))
                continue
            events += len(encoded)
            previous = previous or _GENESIS
            first = position
            metadata, metadata_digest = req.metadata, req.metadata_digest
            stream_part = _STREAM_PARTS.get(stream_id) or _stream_part(stream_id)
            for enc, event_id in zip(encoded, req.event_ids or (None,) * len(encoded),
                                     strict=True):
                version += 1
                type_name, type_version, payload, digest = enc
                # chain_hash_digests, with the stream's and the type's parts built once
                previous = _sha256(b"".join((
                    previous, stream_part, version.to_bytes(8, "big"),
                    _TYPE_PARTS.get((type_name, type_version))
                    or _type_part(type_name, type_version),
                    digest, metadata_digest,
                ))).digest()
                rows.append((position, stream_id, version, type_name, type_version,
                             recorded_at, payload, metadata, previous, event_id))
                if event_id is not None:
                    ids_placed[event_id] = (stream_id, version, position, recorded_at)
                position += 1
            heads[stream_id] = (version, previous)
            if req.blobs:
                for ref, data in req.blobs:
                    if ref.digest not in known:
                        self.blobs.setdefault(ref.digest, data)
            outcomes.append(_result(stream_id, version, first, position - 1, recorded_at))
        self.next_position = position
        self.appends += appends
        self.events += events
        return outcomes

    def _failed(self, req: AppendRequest, error: EventStoreError) -> EventStoreError:
        self.failures += 1
        log.warning("append_failed", stream_id=req.stream_id, error_type=type(error).__name__,
                    error=str(error))
        return error

    def _replayed(self, req: AppendRequest) -> AppendResult | None:
        if not req.event_ids:
            return None
        found = [self.ids[i] for i in req.event_ids if i in self.ids]
        if len(found) < len(req.event_ids):
            found += self.writer.lookup_ids([i for i in req.event_ids if i not in self.ids])
        if not found:
            return None
        if len(found) != len(req.event_ids) or any(f[0] != req.stream_id for f in found):
            raise EventStoreError("event ids were already used by a different append")
        found.sort(key=lambda f: f[2])
        return AppendResult(req.stream_id, found[-1][1], found[0][2], found[-1][2],
                            found[-1][3])

    def write(self, conn: apsw.Connection) -> None:
        """Insert the batch's blobs, rows and new stream heads."""
        if self.blobs:
            _insert_blobs(conn, self.blobs)
        if self.rows:
            conn.executemany(_INSERT_EVENT, self.rows)
            conn.executemany("INSERT OR REPLACE INTO streams VALUES (?,?,?)",
                             [(sid, v, h) for sid, (v, h) in self.heads.items()])


class GroupWriter:
    """Owns the write connection; commits queued appends in groups (see module docstring)."""

    def __init__(
        self,
        conn: apsw.Connection,
        advance: Callable[[int], None],
        announce: Callable[[int], None],
    ) -> None:
        """Write through `conn`; after each commit call `advance(last_position)` then
        `announce(last_position)`, both before any future resolves (so a caller whose
        append returned sees its position, and the listeners have heard of it)."""
        self.conn = conn
        self.advance = advance
        self.announce = announce
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.known_blobs: set[bytes] = set()
        self.next_position = 1
        self.batches = 0
        self.batched_requests = 0
        # Counted here, on the only thread that resolves appends: a done-callback per
        # append to count it cost more than the counting.
        self.counts = AppendCounts(0, 0, 0, 0)
        self._data_version: int | None = None
        self.lock = threading.Lock()

    def run(self, requests: queue.SimpleQueue[object]) -> None:
        """Commit batches from `requests` until `STOP` arrives."""
        stopping = False
        while not stopping:
            batch: list[AppendRequest] = []
            item = requests.get()
            while True:
                if item is STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = requests.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self.commit(batch)

    def commit(self, batch: list[AppendRequest]) -> None:
        """Commit `batch` in one transaction and resolve every request's future.

        Any thread may call this; commits are serialized on `lock` (the writer
        thread's own batches, and `SqliteRecorder.commit_deferred` callers'), so the
        connection is never used by two threads at once.
        """
        with self.lock:
            self._commit(batch)

    def _commit(self, batch: list[AppendRequest]) -> None:
        try:
            outcomes = self._transaction(batch)
        except apsw.Error as exc:
            self._forget()
            if len(batch) > 1:
                log.warning("eventstore_batch_split", error=str(exc), requests=len(batch))
                for req in batch:
                    self._commit([req])
                return
            log.exception("eventstore_commit_failed", error=str(exc), stream_id=batch[0].stream_id)
            self._count(0, 0, 0, 1)
            batch[0].future.set_exception(StoreBrokenError(f"commit failed: {exc}"))
            return
        except Exception as exc:
            # A bug here must not kill the only writer and leave every caller waiting.
            self._forget()
            log.exception("eventstore_writer_bug", requests=len(batch))
            self._count(0, 0, 0, len(batch))
            for req in batch:
                req.future.set_exception(StoreBrokenError(f"append failed: {exc!r}"))
            return
        self.batches += 1
        self.batched_requests += len(batch)
        self.advance(self.next_position - 1)
        self.announce(self.next_position - 1)
        resolve_all([req.future for req in batch], outcomes)

    def _count(self, appends: int, events: int, conflicts: int, failures: int) -> None:
        old = self.counts
        self.counts = AppendCounts(old.appends + appends, old.events + events,
                                   old.conflicts + conflicts, old.failures + failures)

    def _transaction(self, batch: list[AppendRequest]) -> list[Outcome]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._sync()
            plan = _Batch(self, time.time())
            outcomes = plan.place(batch)
            plan.write(conn)
            conn.execute("COMMIT")
        except BaseException:
            if not conn.getautocommit():
                conn.execute("ROLLBACK")
            raise
        # Counted before any caller can see its answer.
        self._count(plan.appends, plan.events, plan.conflicts, plan.failures)
        self.heads.update(plan.heads)
        self.known_blobs.update(plan.blobs)
        if len(self.known_blobs) > _KNOWN_BLOBS_LIMIT:
            self.known_blobs.clear()
        self.next_position = plan.next_position
        return outcomes

    def _sync(self) -> None:
        """Forget cached state if another connection committed since our last batch."""
        version: int = self.conn.execute("PRAGMA data_version").fetchall()[0][0]  # type: ignore[assignment]
        if version == self._data_version:
            return
        self._data_version = version
        self.heads.clear()
        self.known_blobs.clear()
        top: Any = self.conn.execute(
            "SELECT max(coalesce((SELECT max(position) FROM events), 0), coalesce((SELECT seq "
            "FROM sqlite_sequence WHERE name = 'events'), 0))").fetchall()[0][0]
        self.next_position = int(top) + 1

    def _forget(self) -> None:
        self.heads.clear()
        self.known_blobs.clear()
        self._data_version = None

    def head(self, stream_id: str) -> tuple[int, bytes]:
        """The stream's (version, last hash), cached after the first read."""
        head = self.heads.get(stream_id)
        if head is None:
            rows: list[Any] = self.conn.execute(
                "SELECT seq, hash FROM events WHERE stream_id = ? ORDER BY seq DESC LIMIT 1",
                (stream_id,)).fetchall()
            head = (int(rows[0][0]), bytes(rows[0][1])) if rows else (0, b"")
            self.heads[stream_id] = head
        return head

    def lookup_ids(self, event_ids: list[str]) -> list[tuple[str, int, int, float]]:
        """(stream id, seq, position, recorded at) of stored events with these ids."""
        marks = ",".join("?" * len(event_ids))
        rows: list[Any] = self.conn.execute(
            f"SELECT stream_id, seq, position, recorded_at FROM events "
            f"WHERE event_id IN ({marks})", tuple(event_ids)).fetchall()
        return [(str(r[0]), int(r[1]), int(r[2]), float(r[3])) for r in rows]


_sha256 = sha256


def _stream_part(stream_id: str) -> bytes:
    """The hashed bytes of a stream id and of the seq's length prefix (see `chain_hash_digests`)."""
    part = _STREAM_PARTS.get(stream_id)
    if part is None:
        sid = stream_id.encode()
        part = len(sid).to_bytes(4, "big") + sid + b"\x00\x00\x00\x08"
        if len(_STREAM_PARTS) >= _PARTS_LIMIT:
            _STREAM_PARTS.clear()
        _STREAM_PARTS[stream_id] = part
    return part


def _type_part(type_name: str, version: int) -> bytes:
    """The hashed bytes of a type name and its schema version (see `chain_hash_digests`)."""
    part = _TYPE_PARTS.get((type_name, version))
    if part is None:
        name = type_name.encode()
        part = (len(name).to_bytes(4, "big") + name + b"\x00\x00\x00\x04"
                + version.to_bytes(4, "big"))
        _TYPE_PARTS[(type_name, version)] = part
    return part


def _insert_blobs(conn: apsw.Connection, blobs: dict[bytes, bytes]) -> None:
    """Store blobs not yet in the table, compressing the large ones."""
    digests = list(blobs)
    present: set[bytes] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start:start + 500]
        marks = ",".join("?" * len(chunk))
        present.update(bytes(r[0]) for r in conn.execute(
            f"SELECT digest FROM blobs WHERE digest IN ({marks})", tuple(chunk)))
    rows = []
    for digest, data in blobs.items():
        if digest in present:
            continue
        codec, stored = 0, data
        if len(data) > _COMPRESS_OVER:
            packed = zlib.compress(data, 6)
            if len(packed) < len(data):
                codec, stored = 1, packed
        rows.append((digest, codec, len(data), stored))
    if rows:
        conn.executemany("INSERT INTO blobs VALUES (?,?,?,?)", rows)
