"""`verify`: prove the log was not edited — contiguous sequences, an intact hash chain, and
blobs whose content still hashes to the digest events refer to them by."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator

from eventstore._recorder import Damage, RawEvent, Recorder
from eventstore._registry import EventRegistry
from eventstore._rows import row_hash

__all__ = ["damaged_blobs", "first_damage", "verify_log", "verify_stream"]


def verify_stream(recorder: Recorder, stream_id: str) -> Damage | None:
    """The first damaged event of one stream, or None if the stream is intact."""
    return first_damage(recorder.registry, stream_id, recorder.read_raw(stream_id),
                        recorder.stream_head(stream_id))


def first_damage(
    registry: EventRegistry,
    stream_id: str,
    rows: Iterable[RawEvent],
    head: tuple[int, bytes] | None = None,
) -> Damage | None:
    """The first row of one stream (in seq order) that breaks contiguity, the hash chain
    or decoding; then, if the store keeps a `head` (version, last hash), whether the
    rows end where it says. None if all is intact."""
    previous: bytes | None = None
    expected_seq = 1
    for row in rows:
        if row.seq != expected_seq:
            return Damage(stream_id, expected_seq, row.position,
                          f"sequence gap: expected {expected_seq}, found {row.seq}")
        if row_hash(row, previous) != row.hash:
            return Damage(stream_id, row.seq, row.position,
                          "hash mismatch: payload, metadata or the chain was altered")
        try:
            registry.decode(row.type_name, row.version, row.payload)
        except Exception as exc:  # noqa: BLE001  (any decode failure is damage to report)
            return Damage(stream_id, row.seq, row.position, f"undecodable: {exc}")
        previous = row.hash
        expected_seq += 1
    if head is not None and (head[0] != expected_seq - 1 or head[1] != (previous or b"")):
        return Damage(stream_id, expected_seq, None,
                      f"the stream ends at seq {expected_seq - 1} but its head says "
                      f"{head[0]}: events were removed or replaced at the end")
    return None


def verify_log(recorder: Recorder) -> Iterator[tuple[str, int, Damage | None]]:
    """Walk every stream; yields (stream id, events checked, damage or None)."""
    versions = {info.stream_id: info.version for info in recorder.list_streams()}
    for stream_id in sorted(versions.keys() | set(recorder.headed_streams())):
        yield stream_id, versions.get(stream_id, 0), verify_stream(recorder, stream_id)


def damaged_blobs(recorder: Recorder, page: int = 500) -> Iterator[tuple[int, bytes | None]]:
    """Walk the blob table (SQLite and PostgreSQL stores; a memory store has none to
    check); yields (blobs checked so far, the digest of a blob whose content no longer
    hashes to it, or None). Blobs sit outside the hash chain: this is what proves a
    system block, a message or a recorded upstream answer was not edited."""
    raw_blobs = getattr(recorder, "raw_blobs", None)
    if raw_blobs is None:
        return
    checked, after = 0, b""
    while rows := raw_blobs(after, page):
        for digest, codec, _size, data in rows:
            checked += 1
            try:
                content = zlib.decompress(data) if codec == 1 else data
            except zlib.error:
                yield checked, digest
                continue
            yield checked, None if hashlib.sha256(content).digest() == digest else digest
        after = rows[-1][0]
