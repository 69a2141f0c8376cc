"""`Turns`: an immutable sequence that behaves as a tuple and shares what it did not change."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.projections._turns import CHUNK, Turns

# One step: ("append", value) or ("replace", index seed, value).
steps = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers()),
    st.tuples(st.just("replace"), st.integers(min_value=0), st.integers()),
), max_size=300)


@given(st.lists(st.integers(), max_size=3 * CHUNK + 5))
def test_it_reads_like_the_tuple_it_was_built_from(items: list[int]) -> None:
    turns = Turns(items)
    assert len(turns) == len(items)
    assert list(turns) == items
    assert list(reversed(turns)) == items[::-1]
    assert [turns[i] for i in range(-len(items), len(items))] == items + items
    assert turns[1:-1:2] == tuple(items)[1:-1:2]
    for bad in (len(items), -len(items) - 1):
        with pytest.raises(IndexError):
            turns[bad]


@given(steps)
def test_appended_and_replaced_match_a_list_and_never_change_the_original(ops) -> None:
    model: list[int] = []
    turns: Turns[int] = Turns()
    for op in ops:
        before, snapshot = turns, list(turns)
        if op[0] == "append":
            turns = turns.appended(op[1])
            model.append(op[1])
        elif model:
            index = op[1] % len(model)
            turns = turns.replaced(index, op[2])
            model[index] = op[2]
        assert list(before) == snapshot  # immutable
        assert list(turns) == model
    assert turns == Turns(model)  # same contents, same structure: equal and equally hashed
    assert hash(turns) == hash(Turns(model))
    assert len(turns) == len(model)


def test_unequal_contents_are_unequal_and_a_tuple_is_not_a_turns() -> None:
    assert Turns([1, 2]) != Turns([1, 3])
    assert Turns([1, 2]) != Turns([1, 2, 3])
    assert Turns([1, 2]) != (1, 2)


def test_replacing_outside_the_sequence_is_an_index_error() -> None:
    with pytest.raises(IndexError):
        Turns([1]).replaced(1, 9)
    with pytest.raises(IndexError):
        Turns([1]).replaced(-1, 9)


def test_updates_share_the_chunks_they_do_not_touch() -> None:
    """What makes the session fold O(chunk) per event, not O(turns): a replaced recent
    turn or an appended one leaves every full chunk in place, by identity."""
    turns = Turns(range(10 * CHUNK + 3))
    recent = turns.replaced(len(turns) - 1, -1)
    grown = turns.appended(-2)
    old = turns.replaced(5, -3)
    assert all(a is b for a, b in zip(recent._chunks, turns._chunks, strict=True))
    assert all(a is b for a, b in zip(grown._chunks, turns._chunks, strict=True))
    assert old._chunks[0] is not turns._chunks[0]
    assert all(a is b for a, b in zip(old._chunks[1:], turns._chunks[1:], strict=True))
    assert old._tail is turns._tail
