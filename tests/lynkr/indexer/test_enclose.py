"""`nest` and `innermost`: which span encloses a span or a point."""

from __future__ import annotations

import random

from lynkr.indexer._enclose import innermost, nest


def _slow_innermost(spans: list[tuple[int, int]], point: int) -> int | None:
    """The definition: the containing span (start <= point < end) that starts last."""
    inside = [i for i, (start, end) in enumerate(spans) if start <= point < end]
    return max(inside, key=lambda i: (spans[i][0], -spans[i][1])) if inside else None


def _random_tree(rng: random.Random, start: int, end: int, depth: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    at = start
    while depth and at < end - 2 and rng.random() < 0.7:
        lo = rng.randint(at, end - 2)
        hi = rng.randint(lo + 1, end)
        spans.append((lo, hi))
        spans += _random_tree(rng, lo, hi, depth - 1)
        at = hi
    return spans


def test_innermost_finds_the_deepest_span_around_each_point():
    """Points before, inside, on the edges of and after nested spans get the deepest one."""
    spans = [(0, 10), (2, 6), (3, 5), (6, 9), (12, 14)]
    points = [0, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14, 20]
    assert innermost(spans, points) == [0, 1, 2, 2, 1, 3, 3, 0, None, None, 4, None, None]


def test_innermost_agrees_with_the_definition_on_random_trees():
    """On random properly nested spans, every point's owner matches a brute-force search."""
    rng = random.Random(9)
    for _ in range(200):
        spans = sorted(set(_random_tree(rng, 0, 60, 4)), key=lambda s: (s[0], -s[1]))
        points = list(range(0, 62))
        assert innermost(spans, points) == [_slow_innermost(spans, p) for p in points]


def test_innermost_with_no_spans_is_all_top_level():
    """Without spans every point is at top level."""
    assert innermost([], [0, 5]) == [None, None]


def test_spans_sharing_an_end_hand_back_to_the_right_parent():
    """When inner and outer spans end together, the next point belongs to the grandparent."""
    spans = [(0, 20), (1, 10), (2, 10), (10, 15)]
    assert innermost(spans, [9, 10, 15, 19, 20]) == [2, 3, 0, 0, None]
    assert nest(spans) == [None, 0, 1, 0]
