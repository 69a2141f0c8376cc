"""`lynkr._json`: orjson's speed for writing JSON, `json` for what orjson cannot write."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lynkr import _json

# JSON-like values, including what orjson alone refuses: huge ints, lone surrogates.
scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**64)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text()
           | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0 here)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(values)
def test_dumps_reads_back_as_json_s_own_output_does(value):
    """json.loads(dumps(v)) == json.loads(json.dumps(v)): v itself, huge ints included
    (an escaped surrogate pair reads back as the one character it encodes, in both)."""
    assert same(json.loads(_json.dumps(value)), json.loads(json.dumps(value)))


@given(values)
def test_dumps_text_reads_back_as_the_tool_arguments_did(value):
    """The str form reads back as `json.dumps(v, ensure_ascii=False)` (what tool call
    arguments were written with before) does."""
    assert same(json.loads(_json.dumps_text(value)),
                json.loads(json.dumps(value, ensure_ascii=False)))


def test_dumps_is_compact_utf8():
    """No spaces, non-ASCII as UTF-8: what `json.dumps(separators=(',', ':'),
    ensure_ascii=False)` writes for strings and ints."""
    value = {"cmd": "ls -la", "n": [1, 2], "name": "café ☕"}
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert _json.dumps(value) == expected.encode()
    assert _json.dumps_text(value) == expected


def test_a_huge_int_is_written_exactly():
    """orjson refuses ints beyond 64 bits; json writes them digit for digit."""
    assert _json.dumps({"id": 2**70}) == b'{"id":1180591620717411303424}'


def test_tuples_and_non_str_keys_are_written_as_json_writes_them():
    """A tuple is an array; an int key becomes a string (through json)."""
    assert json.loads(_json.dumps({"t": (1, 2)})) == {"t": [1, 2]}
    assert json.loads(_json.dumps({1: "x"})) == {"1": "x"}


def test_nan_is_written_as_null():
    """NaN and infinities become null: valid JSON (json would write NaN)."""
    assert json.loads(_json.dumps([math.nan, math.inf])) == [None, None]


def test_what_json_cannot_write_is_a_type_error():
    """A set is neither JSON nor writable by json: TypeError."""
    with pytest.raises(TypeError):
        _json.dumps({"s": {1, 2}})
