"""Turning events into stored rows and back: encoding, sequence numbers, the hash chain.

Shared by both recorders so that they store byte-identical rows and `verify`
means the same thing for each. Replay decodes millions of rows, so the decode
path fills `Recorded` records through their slots' descriptors (`__set__`, what the
frozen-dataclass `__init__` does by name, at about a third of its cost) and caches
decoded metadata (most events of a request share the same bytes).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from eventstore._codec import cbor_loads, chain_hash, chain_hash_digests, tag_hook
from eventstore._recorder import Metadata, RawEvent, Recorded
from eventstore._registry import Event, EventRegistry

__all__ = [
    "EncodedEvent",
    "build_rows",
    "decode_record",
    "decode_records",
    "decode_row",
    "encode_events",
    "encode_metadata",
    "row_hash",
]

_CACHE_LIMIT = 4096
_UNKNOWN = (-1, None)  # (version, builder) of a type no class handles: no row matches it
_META_ENCODED: dict[Metadata | None, tuple[bytes, bytes]] = {}
_META_DECODED: dict[bytes, Metadata] = {}
_META_FIELDS = frozenset(f.name for f in dataclasses.fields(Metadata))
_new = object.__new__
_META_STORED = frozenset(("request_id", "causation_id", "actor", "key_id"))  # see _metadata
if _META_STORED != _META_FIELDS:  # pragma: no cover
    raise TypeError("_metadata must be taught Metadata's fields")


class EncodedEvent(NamedTuple):
    """One event encoded for storage, before it has a place in a stream."""

    type_name: str
    version: int
    payload: bytes
    digest: bytes  # SHA-256 of `payload`, the part the hash chain covers


def encode_events(registry: EventRegistry, events: Sequence[Event]) -> list[EncodedEvent]:
    """Encode events (in the caller's thread, so the writer only places them).

    Raises:
        UnknownEventTypeError: an event's class is not registered.
        TypeError: a field holds a value CBOR cannot carry.
    """
    encode, out = registry.encode, []
    for event in events:
        type_name, version, payload = encode(event)
        # tuple.__new__ straight: the NamedTuple's generated __new__ costs more than the tuple
        out.append(_new_tuple(EncodedEvent, (type_name, version, payload,
                                             _sha256(payload).digest())))
    return out


_new_tuple = tuple.__new__
_sha256 = hashlib.sha256


def encode_metadata(metadata: Metadata | None) -> tuple[bytes, bytes]:
    """The stored bytes of `metadata` and their SHA-256 (cached: requests repeat them)."""
    hit = _META_ENCODED.get(metadata)
    if hit is None:
        data = (metadata or Metadata()).encode()
        hit = (data, hashlib.sha256(data).digest())
        if len(_META_ENCODED) >= _CACHE_LIMIT:
            _META_ENCODED.clear()
        _META_ENCODED[metadata] = hit
    return hit


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
    meta, meta_digest = encode_metadata(metadata)
    rows = []
    prev = previous_hash
    for offset, enc in enumerate(encode_events(registry, events), start=1):
        seq = version + offset
        digest = chain_hash_digests(prev, stream_id, seq, enc.type_name, enc.version,
                                    enc.digest, meta_digest)
        rows.append(
            RawEvent(
                position=0,
                stream_id=stream_id,
                seq=seq,
                type_name=enc.type_name,
                version=enc.version,
                recorded_at=recorded_at,
                payload=enc.payload,
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


def decode_metadata(data: bytes) -> Metadata:
    """Decoded metadata, shared between events with the same bytes (it is frozen)."""
    meta = _META_DECODED.get(data)
    if meta is None:
        meta = _metadata(data)
        if len(_META_DECODED) >= _CACHE_LIMIT:
            _META_DECODED.clear()
        _META_DECODED[data] = meta
    return meta


def _metadata(data: bytes) -> Metadata:
    """Decode metadata bytes (replay misses the cache every few rows: requests change)."""
    raw = cbor_loads(data) if data else {}
    if type(raw) is not dict or not raw.keys() <= _META_FIELDS:
        return Metadata.decode(data)
    # Written by this build: known fields, no need for `decode`'s filtering.
    return Metadata(request_id=raw.get("request_id"), causation_id=raw.get("causation_id"),
                    actor=raw.get("actor"), key_id=raw.get("key_id"))


# `Recorded` is built by replay for every row, slot by slot (see module docstring).
(_set_position, _set_stream_id, _set_seq, _set_event, _set_recorded_at, _set_metadata,
 _set_event_id) = (getattr(Recorded, name).__set__ for name in (
    "position", "stream_id", "seq", "event", "recorded_at", "metadata", "event_id"))


def decode_record(registry: EventRegistry, row: Sequence[Any]) -> Recorded[Event]:
    """Decode a selected row (position, stream id, seq, type, version, recorded at,
    payload, metadata, event id) into a `Recorded` event, upcasting as needed."""
    record = _new(Recorded)
    _set_position(record, row[0])
    _set_stream_id(record, row[1])
    _set_seq(record, row[2])
    _set_event(record, registry.decode(row[3], row[4], row[6]))
    _set_recorded_at(record, row[5])
    _set_metadata(record, decode_metadata(row[7]))
    _set_event_id(record, row[8])
    return record


def decode_records(
    registry: EventRegistry, rows: Iterable[Sequence[Any]]
) -> list[Recorded[Event]]:
    """`decode_record` for many rows: the replay hot loop, written flat on purpose.

    Rows of a current class version decode inline; anything else (an upcast, an
    unknown type, bad bytes) goes through `decode_record` for its precise error.
    """
    out: list[Recorded[Event]] = []
    builders: dict[str, tuple[int, Any]] = {}  # type name -> (current version, builder)
    meta_cache = _META_DECODED
    new, recorded, loads, hook = _new, Recorded, cbor_loads, tag_hook
    set_position, set_stream_id, set_seq, set_event = (_set_position, _set_stream_id,
                                                       _set_seq, _set_event)
    set_recorded_at, set_metadata, set_event_id = _set_recorded_at, _set_metadata, _set_event_id
    append = out.append
    last_meta_bytes, last_meta = None, None  # rows of one append share their metadata
    for row in rows:
        position, stream_id, seq, type_name, version, recorded_at, data, meta, event_id = row
        current, build = builders.get(type_name) or builders.setdefault(
            type_name, registry.current_builder(type_name) or _UNKNOWN)
        if version != current:  # an upcast, or a type no class handles
            append(decode_record(registry, row))
            continue
        try:
            event = build(loads(data, tag_hook=hook))
        except Exception:  # noqa: BLE001  (any failure is re-raised precisely by the slow path)
            append(decode_record(registry, row))
            continue
        record = new(recorded)
        set_position(record, position)
        set_stream_id(record, stream_id)
        set_seq(record, seq)
        set_event(record, event)
        set_recorded_at(record, recorded_at)
        if meta != last_meta_bytes:
            last_meta_bytes, last_meta = meta, meta_cache.get(meta) or decode_metadata(meta)
        set_metadata(record, last_meta)
        set_event_id(record, event_id)
        append(record)
    return out


def decode_row(registry: EventRegistry, row: RawEvent) -> Recorded[Event]:
    """Decode a stored row into a `Recorded` event (upcasting as needed)."""
    return decode_record(registry, (row.position, row.stream_id, row.seq, row.type_name,
                                    row.version, row.recorded_at, row.payload, row.metadata,
                                    row.event_id))
