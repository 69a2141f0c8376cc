"""Which definition encloses what: sweeps over properly nested (start, end) spans.

Both functions take spans sorted by (start, -end), as tree nodes nest, and answer
with indices into that list (None at top level).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from functools import partial

__all__ = ["innermost", "nest"]


def nest(spans: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each span, the index of the innermost other span containing it."""
    stack: list[int] = []
    parents: list[int | None] = []
    for index, (start, _end) in enumerate(spans):
        while stack and spans[stack[-1]][1] <= start:
            stack.pop()
        parents.append(stack[-1] if stack else None)
        stack.append(index)
    return parents


def _segments(spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int | None]]:
    """Where the innermost containing span changes: (bounds, owner from each bound on).

    Events (position, owner from there on) come out in non-decreasing position; of
    several at one position the last one holds, which is what `dict` keeps.
    """
    events: list[tuple[int, int | None]] = [(-1, None)]
    stack: list[int] = []
    for index, (start, _end) in enumerate(spans):
        while stack and spans[stack[-1]][1] <= start:
            events.append((spans[stack.pop()][1], stack[-1] if stack else None))
        stack.append(index)
        events.append((start, index))
    while stack:
        events.append((spans[stack.pop()][1], stack[-1] if stack else None))
    owner_at = dict(events)
    return list(owner_at), list(owner_at.values())


def innermost(spans: Sequence[tuple[int, int]], points: Sequence[int]) -> list[int | None]:
    """For each point (>= 0), the index of the innermost span containing it.

    The spans are cut into segments with one innermost owner each, then every point
    is a C-level bisection: this runs for ~350k references on the stdlib.
    """
    bounds, owners = _segments(spans)
    return [owners[i - 1] for i in map(partial(bisect_right, bounds), points)]
