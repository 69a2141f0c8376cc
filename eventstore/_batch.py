"""`Batch`: placing one group commit's append requests before they are written.

Each `AppendRequest` is checked in order against the stream heads (expected
version, event ids); an accepted one gets its positions, sequence numbers and
hash chain, and its rows, head and new blobs join the batch. A rejected request
gets its error and takes nothing from its batch mates. `GroupWriter` owns the
connection and the transaction around this; nothing here waits or commits.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Protocol

import apsw
import structlog

from eventstore._codec import BlobRef
from eventstore._errors import ConcurrencyError, EventStoreError
from eventstore._pending import PendingAppend
from eventstore._recorder import ANY_VERSION, AppendResult
from eventstore._recorder import append_result as _result
from eventstore._rows import EncodedEvent


class HeadSource(Protocol):
    """What a batch reads from its writer (SQLite's `GroupWriter`, PostgreSQL's `PgWriter`)."""

    known_blobs: set[bytes]
    next_position: int

    def head(self, stream_id: str) -> tuple[int, bytes]:
        """The stream's (version, last hash)."""

    def lookup_ids(self, event_ids: list[str]) -> list[tuple[str, int, int, float]]:
        """(stream id, seq, position, recorded at) of stored events with these ids."""

__all__ = ["AppendRequest", "Batch", "Outcome"]

log = structlog.get_logger()

_COMPRESS_OVER = 1024
_GENESIS = bytes(32)  # the "previous hash" of a stream's first event
_PARTS_LIMIT = 10_000
_STREAM_PARTS: dict[str, bytes] = {}  # only the committing thread touches these two
_TYPE_PARTS: dict[tuple[str, int], bytes] = {}
_INSERT_EVENT = (
    "INSERT INTO events (position, stream_id, seq, type, version, recorded_at, payload, "
    "metadata, hash, event_id) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
Outcome = AppendResult | EventStoreError


@dataclass(slots=True, eq=False)
class AppendRequest:
    """One caller's append, already encoded, waiting for a group commit.

    The writer resolves `future` after the commit (compared by identity, not value).
    """

    stream_id: str
    expected_version: int
    encoded: list[EncodedEvent]
    metadata: bytes
    metadata_digest: bytes
    event_ids: Sequence[str] | None
    blobs: list[tuple[BlobRef, bytes]]
    future: PendingAppend[AppendResult] = field(default_factory=PendingAppend, init=False)


class Batch:
    """The rows, heads, event ids and blobs one transaction will write."""

    def __init__(self, writer: HeadSource, recorded_at: float) -> None:
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
