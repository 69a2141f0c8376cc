"""The replay loop (`decode_records`): fast path, fallbacks, frozen values, shared refs."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import cbor2
import pytest

from eventstore import (
    BlobRef,
    Event,
    EventDecodeError,
    EventRegistry,
    Metadata,
    UnknownEventTypeError,
)
from eventstore._codec import BLOB_TAG, encode_payload
from eventstore._recorder import Recorded
from eventstore._rows import build_rows, decode_records

REG = EventRegistry()
REF = BlobRef(b"\x01" * 32, 10)


@REG.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ShapesNoted(Event):
    """One field of each annotation kind the builder treats differently."""

    refs: tuple[BlobRef, ...]
    maybe_refs: tuple[str, ...] | None
    nested: tuple[tuple[int, ...], ...]
    params: dict[str, Any] | None
    anything: Any
    counts: dict[str, int]


@REG.register
@dataclass(frozen=True, slots=True, kw_only=True)
class NameGiven(Event):
    """Version 2 renamed `title` to `name`."""

    class_version = 2
    name: str


@REG.upcaster("NameGiven", 1)
def _name_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    payload["name"] = payload.pop("title")
    return payload


def row(event_or_payload: Event | tuple[str, int, bytes], position: int = 1) -> tuple[Any, ...]:
    """A selected row holding `event` (or a raw (type, version, payload))."""
    if isinstance(event_or_payload, Event):
        stored = build_rows(REG, "s", position - 1, None, [event_or_payload],
                            Metadata(request_id="r"), None, 1.0)[0]
        type_name, version, payload = stored.type_name, stored.version, stored.payload
    else:
        type_name, version, payload = event_or_payload
    return (position, "s", position, type_name, version, 1.0, payload,
            Metadata(request_id="r").encode(), None)


def test_fields_come_back_frozen_whatever_their_annotation() -> None:
    """Arrays become tuples at every depth, and flat maps and tuples come back equal."""
    event = ShapesNoted(refs=(REF, REF), maybe_refs=("a",), nested=((1, 2), ()),
                        params={"a": [1, {"b": [2]}], "c": 1}, anything=[[1], {"x": [2]}],
                        counts={"n": 1})
    [record] = decode_records(REG, [row(event)])
    assert record.event == ShapesNoted(
        refs=(REF, REF), maybe_refs=("a",), nested=((1, 2), ()),
        params={"a": (1, {"b": (2,)}), "c": 1}, anything=((1,), {"x": (2,)}), counts={"n": 1})
    hash(record.event.nested)
    assert type(record) is Recorded


def test_none_and_flat_values_pass_through() -> None:
    """Optional fields left None and maps without containers are taken as decoded."""
    event = ShapesNoted(refs=(), maybe_refs=None, nested=(), params={"a": 1}, anything=None,
                        counts={})
    [record] = decode_records(REG, [row(event)])
    assert record.event == event
    assert record.metadata == Metadata(request_id="r")


def test_old_version_is_upcast_on_the_replay_path() -> None:
    """A v1 row among current rows decodes through its upcaster, in place."""
    v1 = ("NameGiven", 1, encode_payload({"title": "old"}))
    records = decode_records(REG, [row(NameGiven(name="new"), 1), row(v1, 2),
                                   row(NameGiven(name="last"), 3)])
    assert [r.event for r in records] == [NameGiven(name="new"), NameGiven(name="old"),
                                          NameGiven(name="last")]
    assert [r.position for r in records] == [1, 2, 3]


def test_unknown_type_on_the_replay_path_names_it() -> None:
    """A type no class handles fails the page with an error naming the type."""
    with pytest.raises(UnknownEventTypeError, match="Vanished"):
        decode_records(REG, [row(("Vanished", 1, encode_payload({"x": 1})))])


@pytest.mark.parametrize("payload", [
    {"name": "n", "extra": 1},
    {},
])
def test_payload_not_matching_the_fields_is_a_decode_error(payload: dict[str, Any]) -> None:
    """Missing or unexpected fields fail with `EventDecodeError`, not a silent event."""
    with pytest.raises(EventDecodeError, match="NameGiven"):
        decode_records(REG, [row(("NameGiven", 2, encode_payload(payload)))])


def test_damaged_payload_is_a_decode_error() -> None:
    """Bytes that are not CBOR fail with `EventDecodeError` naming the type."""
    with pytest.raises(EventDecodeError, match="NameGiven"):
        decode_records(REG, [row(("NameGiven", 2, b"\xa1\x64"))])


def test_repeated_blob_refs_decode_to_one_shared_object() -> None:
    """Every row referring to a digest gets the same (frozen) `BlobRef` object."""
    event = ShapesNoted(refs=(REF,), maybe_refs=None, nested=(), params=None, anything=REF,
                        counts={})
    first, second = decode_records(REG, [row(event, 1), row(event, 2)])
    assert first.event.refs[0] is second.event.refs[0]
    assert first.event.anything is first.event.refs[0]


def test_same_digest_with_another_size_keeps_its_own_size() -> None:
    """The shared ref is only reused when the size matches too."""
    other = BlobRef(REF.digest, 99)
    events = [ShapesNoted(refs=(ref,), maybe_refs=None, nested=(), params=None,
                          anything=None, counts={}) for ref in (REF, other, REF)]
    records = decode_records(REG, [row(e, i + 1) for i, e in enumerate(events)])
    assert [r.event.refs[0].size for r in records] == [10, 99, 10]


@pytest.mark.parametrize("value", [["not bytes", 1], [b"\x01" * 32, "1"], [b"\x01" * 32, 1.0]])
def test_malformed_blob_ref_is_a_decode_error(value: list[Any]) -> None:
    """A blob tag around anything but (bytes, int) fails, even for a digest seen before."""
    decode_records(REG, [row(ShapesNoted(refs=(BlobRef(b"\x01" * 32, 1),), maybe_refs=None,
                                         nested=(), params=None, anything=None, counts={}))])
    payload = cbor2.dumps({"name": cbor2.CBORTag(BLOB_TAG, value)})
    with pytest.raises(EventDecodeError, match=f"tag {BLOB_TAG}"):
        decode_records(REG, [row(("NameGiven", 2, payload))])


def test_metadata_with_every_field_decodes_equal() -> None:
    """Metadata written by this build comes back equal, as a `Metadata`."""
    meta = Metadata(request_id="q", causation_id="c", actor="a", key_id="k")
    record = row(NameGiven(name="n"))
    [decoded] = decode_records(REG, [(*record[:7], meta.encode(), None)])
    assert decoded.metadata == meta
    assert type(decoded.metadata) is Metadata


def test_metadata_bytes_are_the_canonical_map_of_its_set_fields() -> None:
    """The hash chain covers these bytes: they must not change between builds."""
    meta = Metadata(request_id="req_1", actor="session:s", key_id=None)
    assert meta.encode() == cbor2.dumps({"request_id": "req_1", "actor": "session:s"},
                                        canonical=True)
    assert meta.encode().hex() == ("a2656163746f72697365737369"
                                   "6f6e3a736a726571756573745f6964657265715f31")
    assert Metadata().encode() == b"\xa0"


def test_metadata_with_unknown_keys_keeps_the_known_ones() -> None:
    """Keys a newer build wrote are ignored, as `Metadata.decode` does."""
    data = cbor2.dumps({"request_id": "q", "newer": 1})
    [decoded] = decode_records(REG, [(*row(NameGiven(name="n"))[:7], data, None)])
    assert decoded.metadata == Metadata(request_id="q")


GC_SEEN: list[bool] = []


@REG.register
@dataclass(frozen=True, slots=True, kw_only=True)
class GcObserved(Event):
    """Records whether the cyclic GC was enabled while it was built."""

    n: int

    def __post_init__(self) -> None:
        GC_SEEN.append(gc.isenabled())


def test_decoding_leaves_the_cyclic_gc_alone() -> None:
    """Library code flips no process-wide switch: the GC stays on while rows are built."""
    rows = [row(GcObserved(n=i), i + 1) for i in range(3)]
    GC_SEEN.clear()
    records = decode_records(REG, rows)
    assert [r.event.n for r in records] == [0, 1, 2]
    assert GC_SEEN == [True, True, True]


def test_each_row_keeps_its_own_metadata() -> None:
    """Neighbouring rows with other metadata get theirs; equal bytes share one object."""
    metas = [Metadata(request_id=r) for r in ("a", "a", "b", "a")]
    base = row(NameGiven(name="n"))
    records = decode_records(REG, [(i + 1, *base[1:7], m.encode(), None)
                                   for i, m in enumerate(metas)])
    assert [r.metadata for r in records] == metas
    assert records[0].metadata is records[1].metadata
