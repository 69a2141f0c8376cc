"""Which definition encloses what: sweeps over properly nested (start, end) spans.

Both functions take spans sorted by (start, -end), as tree nodes nest, and answer
with indices into that list (None at top level).
"""

from __future__ import annotations

from collections.abc import Sequence

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


def innermost(spans: Sequence[tuple[int, int]], points: Sequence[int]) -> list[int | None]:
    """For each point (sorted ascending), the index of the innermost span containing it."""
    stack: list[int] = []
    found: list[int | None] = []
    nxt = 0
    for point in points:
        while nxt < len(spans) and spans[nxt][0] <= point:
            while stack and spans[stack[-1]][1] <= spans[nxt][0]:
                stack.pop()
            stack.append(nxt)
            nxt += 1
        while stack and spans[stack[-1]][1] <= point:
            stack.pop()
        found.append(stack[-1] if stack else None)
    return found
