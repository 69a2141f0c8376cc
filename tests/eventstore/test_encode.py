"""The generated payload encoder writes exactly the bytes cbor2 wrote for the field map.

Stored payloads are hashed into the chain, so the faster encoder must not change a
byte: files written before it must verify, and equal events must hash equal.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

import eventstore.events  # noqa: F401  (registers every event class)
from eventstore import EVENTS, BlobRef, Event
from eventstore._codec import encode_payload
from eventstore._encode import compile_encoder, encode_text, head
from tests.eventstore.test_properties import ALL_EVENTS, SETTINGS, blob_refs, json_like

values = st.one_of(json_like, blob_refs, st.text(min_size=20, max_size=300),
                   st.integers(-(2**64), 2**64 - 1))


@SETTINGS
@given(ALL_EVENTS)
def test_every_event_type_encodes_as_its_field_map_did(event: Event) -> None:
    """For every registered class: the same bytes as cbor2 on the map of its fields."""
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}  # type: ignore[arg-type]
    assert EVENTS.encode(event)[2] == encode_payload(fields)


@SETTINGS
@given(st.lists(values, min_size=0, max_size=30))
def test_any_values_and_any_field_count_encode_as_cbor2_does(field_values: list[Any]) -> None:
    """Long texts, large and negative ints, floats, bytes, nested values, blob refs,
    booleans, None, and maps of more than 23 fields (a longer map header)."""
    names = tuple(f"field_{i}" for i in range(len(field_values)))
    encode = compile_encoder(names)
    obj = SimpleNamespace(**dict(zip(names, field_values, strict=True)))
    assert encode(obj) == encode_payload(dict(zip(names, field_values, strict=True)))


@given(st.text(max_size=70_000))
def test_text_heads_match_cbor2(text: str) -> None:
    """Text strings of every length class (1-, 2- and 3-byte heads)."""
    assert encode_text(text) == cbor2.dumps(text)


def test_heads_at_each_length_boundary() -> None:
    """The head of a value at each boundary between head sizes is what cbor2 writes."""
    for n in (0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1):
        assert head(0x00, n) == cbor2.dumps(n)


def test_a_value_cbor_cannot_carry_is_refused() -> None:
    """An unsupported value still raises TypeError, as the cbor2 path did."""
    encode = compile_encoder(("a", "b"))
    try:
        encode(SimpleNamespace(a="ok", b=object()))
    except TypeError:
        return
    raise AssertionError("an object() field was encoded")


def test_a_blob_ref_field_keeps_its_tag() -> None:
    """A `BlobRef` value is written as the blob tag, decodable as before."""
    ref = BlobRef(bytes(range(32)), 12)
    encode = compile_encoder(("blob",))
    assert encode(SimpleNamespace(blob=ref)) == encode_payload({"blob": ref})


odd_refs = st.builds(BlobRef, st.binary(max_size=40), st.integers(-5, 2**40))


@SETTINGS
@given(st.lists(st.one_of(blob_refs, odd_refs), min_size=1, max_size=40))
def test_blob_refs_and_tuples_of_them_encode_as_the_blob_hook_does(refs: list[BlobRef]) -> None:
    """A turn's message refs (written inline, not through cbor2's hook): the same bytes,
    also for a digest that is not 32 bytes or a size that is negative (cbor2 writes those)."""
    encode = compile_encoder(("one", "many"))
    obj = SimpleNamespace(one=refs[0], many=tuple(refs))
    assert encode(obj) == encode_payload({"one": refs[0], "many": tuple(refs)})
