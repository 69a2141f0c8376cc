"""Turning events into stored rows and back: encoding, sequence numbers, the hash chain.

Shared by both recorders so that they store byte-identical rows and `verify`
means the same thing for each. Replay decodes millions of rows, so the decode
path builds `Recorded` records without the frozen-dataclass `__init__` and caches
decoded metadata (most events of a request share the same bytes).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any, NamedTuple

from eventstore._codec import cbor_loads, chain_hash, chain_hash_digests, tag_hook
from eventstore._recorder import Metadata, RawEvent, Recorded
from eventstore._registry import Event, EventRegistry
from eventstore._slots import slot_twin

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
_GC_PAUSE_ROWS = 1000
_UNKNOWN = (-1, None)  # (version, builder) of a type no class handles: no row matches it
_META_ENCODED: dict[Metadata | None, tuple[bytes, bytes]] = {}
_META_DECODED: dict[bytes, Metadata] = {}
_META_FIELDS = frozenset(f.name for f in dataclasses.fields(Metadata))
_new = object.__new__
_META_STORED = frozenset(("request_id", "causation_id", "actor", "key_id"))  # see _metadata
if _META_STORED != _META_FIELDS:  # pragma: no cover
    raise TypeError("_metadata must be taught Metadata's fields")


def _twin_of(cls: type) -> type:
    """`slot_twin(cls)` for a class of this package that must have one."""
    twin = slot_twin(cls)
    if twin is None:  # pragma: no cover  (Recorded and Metadata are slotted dataclasses)
        raise TypeError(f"{cls.__name__} must be a slotted dataclass")
    return twin


_META_TWIN = _twin_of(Metadata)


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
    # Written by this build: known fields, filled without the frozen `__init__`.
    meta = _META_TWIN()
    meta.request_id = raw.get("request_id")
    meta.causation_id = raw.get("causation_id")
    meta.actor = raw.get("actor")
    meta.key_id = raw.get("key_id")
    meta.__class__ = Metadata
    return meta  # type: ignore[no-any-return]


# `Recorded` is built by replay for every row, through its slot twin (see `_slots`).
_RECORDED_TWIN = _twin_of(Recorded)
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

    The cyclic GC is paused while rows are built, `_GC_PAUSE_ROWS` at a time: each
    object made here is acyclic and kept by the caller (refcounting frees it), yet
    every ~700 of them started a collection that walked them again, and their
    promotions triggered full collections of the whole heap (≈ 0.6 µs per row of
    replay; see BENCHMARKS.md). Bounding the pause by rows, not by the caller's
    page, keeps it short even for a whole stream. If the GC is off, it stays off.
    """
    if not gc.isenabled():
        return _decode_rows(registry, list(rows), [])
    out: list[Recorded[Event]] = []
    source = iter(rows)  # a cursor is read inside the pause too: its rows are tuples
    while True:
        gc.disable()
        try:
            chunk = list(islice(source, _GC_PAUSE_ROWS))
            _decode_rows(registry, chunk, out)
        finally:
            gc.enable()
        if len(chunk) < _GC_PAUSE_ROWS:
            return out


def _decode_rows(
    registry: EventRegistry, rows: Sequence[Sequence[Any]], out: list[Recorded[Event]]
) -> list[Recorded[Event]]:
    """The loop of `decode_records`, appending to `out`."""
    builders: dict[str, tuple[int, Any]] = {}  # type name -> (current version, builder)
    meta_cache = _META_DECODED
    twin, recorded, loads, hook = _RECORDED_TWIN, Recorded, cbor_loads, tag_hook
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
        record = twin()
        record.position = position
        record.stream_id = stream_id
        record.seq = seq
        record.event = event
        record.recorded_at = recorded_at
        if meta != last_meta_bytes:
            last_meta_bytes, last_meta = meta, meta_cache.get(meta) or decode_metadata(meta)
        record.metadata = last_meta
        record.event_id = event_id
        record.__class__ = recorded
        append(record)
    return out


def decode_row(registry: EventRegistry, row: RawEvent) -> Recorded[Event]:
    """Decode a stored row into a `Recorded` event (upcasting as needed)."""
    return decode_record(registry, (row.position, row.stream_id, row.seq, row.type_name,
                                    row.version, row.recorded_at, row.payload, row.metadata,
                                    row.event_id))
