"""JSON written on the request path: orjson, with `json` for what orjson cannot write.

Claude Code resends the whole conversation every turn, so a long session's request
is several hundred kilobytes, and the gateway writes all of it again for the
backend: with `json.dumps` that was the largest single item of a long session's
CPU per turn. orjson writes the same JSON 2-4 times faster (`tools/
bench_request_path.py`). It refuses a few values `json` writes (an integer beyond
64 bits, a lone surrogate, a non-str key), so those fall back to `json.dumps`. It
writes NaN and infinities as `null` (valid JSON; `json` writes the invalid `NaN`).

Reading stays `json.loads`: orjson reads an integer beyond 64 bits as a float,
silently losing digits, and guarding against that costs as much as it saves on a
request's text-heavy JSON.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_sorted", "dumps_text"]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of `value` (a value parsed from JSON, or built of the same
    kinds: dict, list, tuple, str, int, float, bool, None).

    Raises:
        TypeError: `value` holds something JSON cannot represent.
        ValueError: `value` holds a reference cycle.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # a huge int, a lone surrogate, a non-str key...
        return json.dumps(value, separators=(",", ":")).encode()


def dumps_sorted(value: Any) -> bytes:
    """`dumps` with every object's keys sorted: the same value always gives the same bytes
    (for digests)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def dumps_text(value: Any) -> str:
    """`dumps` as a str (for JSON nested in JSON, such as tool call arguments); where
    orjson cannot write `value`, what `json.dumps(value, ensure_ascii=False)` writes."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
