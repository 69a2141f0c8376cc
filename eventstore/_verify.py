"""`verify`: prove the log was not edited — contiguous sequences and an intact hash chain."""

from __future__ import annotations

from collections.abc import Iterator

from eventstore._recorder import Damage, Recorder
from eventstore._rows import row_hash

__all__ = ["verify_log", "verify_stream"]


def verify_stream(recorder: Recorder, stream_id: str) -> Damage | None:
    """The first damaged event of one stream, or None if the stream is intact."""
    previous: bytes | None = None
    expected_seq = 1
    for row in recorder.read_raw(stream_id):
        if row.seq != expected_seq:
            return Damage(stream_id, expected_seq, row.position,
                          f"sequence gap: expected {expected_seq}, found {row.seq}")
        if row_hash(row, previous) != row.hash:
            return Damage(stream_id, row.seq, row.position,
                          "hash mismatch: payload, metadata or the chain was altered")
        try:
            recorder.registry.decode(row.type_name, row.version, row.payload)
        except Exception as exc:  # any decode failure is damage to report, not to raise
            return Damage(stream_id, row.seq, row.position, f"undecodable: {exc}")
        previous = row.hash
        expected_seq += 1
    return None


def verify_log(recorder: Recorder) -> Iterator[tuple[str, int, Damage | None]]:
    """Walk every stream; yields (stream id, events checked, damage or None)."""
    for info in recorder.list_streams():
        yield info.stream_id, info.version, verify_stream(recorder, info.stream_id)
