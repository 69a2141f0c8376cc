"""Property tests: every registered event round-trips, and the hash chain catches any edit.

Strategies are built from each event class's field annotations, so a newly
registered event type is covered without touching this file; an annotation the
builder does not know fails loudly instead of being skipped.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventstore.events  # noqa: F401  (registers every event class)
from eventstore import EVENTS, BlobRef, Event, Metadata, verify_stream
from eventstore._rows import build_rows, decode_records
from eventstore._verify import first_damage
from eventstore.events.session import RouteChosen

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
    st.floats(allow_nan=False), st.binary(max_size=20),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(tuple),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
blob_refs = st.builds(BlobRef, st.binary(min_size=32, max_size=32), st.integers(0, 2**40))


def strategy_for(annotation: Any) -> st.SearchStrategy[Any]:
    """A strategy producing values of a CBOR-native field annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    simple = {str: st.text(max_size=30), int: st.integers(-(2**63), 2**63 - 1),
              float: st.floats(allow_nan=False), bool: st.booleans(), bytes: st.binary(),
              BlobRef: blob_refs, type(None): st.none(), Any: json_like}
    if annotation in simple:
        return simple[annotation]
    if origin in (types.UnionType, typing.Union):
        return st.one_of(*(strategy_for(a) for a in args))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0]), max_size=4).map(tuple)
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=4)
    raise TypeError(f"no strategy for annotation {annotation!r}: teach strategy_for")


def event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    """Instances of `cls` with every field drawn from its annotation."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


ALL_EVENTS = st.sampled_from(sorted(EVENTS.classes().values(), key=lambda c: c.type_name)
                             ).flatmap(event_strategy)


def test_every_registered_type_has_a_strategy() -> None:
    """Each registered class's annotations are ones the strategy builder understands."""
    for cls in EVENTS.classes().values():
        event_strategy(cls).validate()


@SETTINGS
@given(ALL_EVENTS)
def test_every_event_type_round_trips_through_the_registry(event: Event) -> None:
    """encode then decode gives back an equal event, for every registered type."""
    type_name, version, payload = EVENTS.encode(event)
    assert EVENTS.decode(type_name, version, payload) == event


@SETTINGS
@given(ALL_EVENTS, st.builds(Metadata, request_id=st.none() | st.text(max_size=10)))
def test_every_event_type_round_trips_through_the_replay_loop(
    event: Event, metadata: Metadata
) -> None:
    """The replay fast path decodes exactly what the registry would."""
    row = build_rows(EVENTS, "s", 0, None, [event], metadata, None, 1.0)[0]
    decoded = decode_records(EVENTS, [(7, row.stream_id, row.seq, row.type_name, row.version,
                                       row.recorded_at, row.payload, row.metadata, None)])
    assert decoded[0].event == event
    assert decoded[0].metadata == metadata
    assert decoded[0].position == 7


def chained(count: int) -> list[Any]:
    """`count` chained rows of one stream, positions filled in."""
    events = [RouteChosen(turn=i, provider="p", backend_model="m", reason="r")
              for i in range(count)]
    rows = build_rows(EVENTS, "s", 0, None, events, Metadata(request_id="r"), None, 1.0)
    return [dataclasses.replace(r, position=i + 1) for i, r in enumerate(rows)]


@SETTINGS
@given(st.integers(1, 12), st.data())
def test_flipping_any_payload_byte_is_caught_at_that_event(count: int, data: Any) -> None:
    """Changing one byte of any stored payload makes verify name exactly that event."""
    rows = chained(count)
    assert first_damage(EVENTS, "s", rows) is None
    target = data.draw(st.integers(0, count - 1))
    payload = bytearray(rows[target].payload)
    index = data.draw(st.integers(0, len(payload) - 1))
    payload[index] ^= data.draw(st.integers(1, 255))
    rows[target] = dataclasses.replace(rows[target], payload=bytes(payload))
    damage = first_damage(EVENTS, "s", rows)
    assert damage is not None
    assert (damage.seq, damage.position) == (target + 1, target + 1)


@SETTINGS
@given(st.integers(2, 12), st.data())
def test_removing_or_reordering_events_is_caught(count: int, data: Any) -> None:
    """Dropping an event or swapping two breaks contiguity or the chain at that point."""
    rows = chained(count)
    index = data.draw(st.integers(0, count - 2))
    if data.draw(st.booleans()):
        del rows[index]
    else:
        rows[index], rows[index + 1] = rows[index + 1], rows[index]
    damage = first_damage(EVENTS, "s", rows)
    assert damage is not None
    assert damage.seq == index + 1


@pytest.mark.parametrize("field", ["metadata", "type_name", "hash"])
def test_editing_other_stored_fields_is_caught(field: str) -> None:
    """Metadata, type or hash edits are damage too, not only payload edits."""
    rows = chained(3)
    changed = {"metadata": Metadata(request_id="forged").encode(), "type_name": "Forged",
               "hash": b"\x00" * 32}[field]
    rows[1] = dataclasses.replace(rows[1], **{field: changed})
    damage = first_damage(EVENTS, "s", rows)
    assert damage is not None
    assert damage.seq == 2


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 4)), max_size=15))
def test_any_sequence_of_appends_verifies(appends: list[tuple[str, int]]) -> None:
    """Whatever appends land on whichever streams, every stream verifies intact."""
    from eventstore import MemoryRecorder

    recorder = MemoryRecorder()
    for stream, n in appends:
        recorder.append(stream, recorder.stream_version(stream),
                        [RouteChosen(turn=i, provider="p", backend_model="m", reason="r")
                         for i in range(n)])
    assert all(verify_stream(recorder, s) is None for s in "abc")
