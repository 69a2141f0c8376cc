"""Turning events into stored rows: encoding, sequence numbers and the hash chain.

Shared by both recorders so that they store byte-identical rows and `verify`
means the same thing for each.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventstore._codec import chain_hash
from eventstore._recorder import Metadata, RawEvent, Recorded
from eventstore._registry import Event, EventRegistry

__all__ = ["build_rows", "decode_row", "row_hash"]


def build_rows(
    registry: EventRegistry,
    stream_id: str,
    version: int,
    previous_hash: bytes | None,
    events: Sequence[Event],
    metadata: Metadata | None,
    event_ids: Sequence[str] | None,
    recorded_at: float,
) -> list[RawEvent]:
    """Rows for `events` appended after `version`; positions are filled by the caller (0)."""
    meta = (metadata or Metadata()).encode()
    rows = []
    prev = previous_hash
    for offset, event in enumerate(events, start=1):
        type_name, type_version, payload = registry.encode(event)
        seq = version + offset
        digest = chain_hash(prev, stream_id, seq, type_name, type_version, payload, meta)
        rows.append(
            RawEvent(
                position=0,
                stream_id=stream_id,
                seq=seq,
                type_name=type_name,
                version=type_version,
                recorded_at=recorded_at,
                payload=payload,
                metadata=meta,
                event_id=event_ids[offset - 1] if event_ids else None,
                hash=digest,
            )
        )
        prev = digest
    return rows


def row_hash(row: RawEvent, previous_hash: bytes | None) -> bytes:
    """Recompute the chain hash a row should carry."""
    return chain_hash(
        previous_hash, row.stream_id, row.seq, row.type_name, row.version, row.payload,
        row.metadata,
    )


def decode_row(registry: EventRegistry, row: RawEvent) -> Recorded[Event]:
    """Decode a stored row into a `Recorded` event (upcasting as needed)."""
    return Recorded(
        position=row.position,
        stream_id=row.stream_id,
        seq=row.seq,
        event=registry.decode(row.type_name, row.version, row.payload),
        recorded_at=row.recorded_at,
        metadata=Metadata.decode(row.metadata),
        event_id=row.event_id,
    )
