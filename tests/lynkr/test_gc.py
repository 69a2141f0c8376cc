"""`lynkr._gc`: the collector's settings for long-running processes."""

from __future__ import annotations

import gc

from lynkr._gc import GC_THRESHOLD, tune_gc


def test_serving_freezes_start_up_objects_and_collects_young_ones_less_often():
    """`tune_gc` freezes what exists and raises the thresholds (restored afterwards)."""
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLD
        assert gc.get_freeze_count() > 0
        assert GC_THRESHOLD[0] > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
