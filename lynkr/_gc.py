"""The cyclic garbage collector's settings for Lynkr's long-running processes.

`lynkr serve` and its projection worker call `tune_gc()` once they have started.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLD", "tune_gc"]

GC_THRESHOLD = (10_000, 20, 20)
"""The cyclic GC's thresholds while serving (Python's default is 700, 10, 10)."""


def tune_gc() -> None:
    """Set the cyclic garbage collector up for serving, once everything has started.

    A request allocates thousands of short-lived containers, nearly all freed by
    reference counting; with the default threshold of 700 the collector ran several
    times per request and, every 100 of those, walked the whole heap, modules and
    all. So: collect once, `gc.freeze()` what start-up made (it lives as long as the
    process, so later full collections need not walk it; a cycle of it that becomes
    garbage later is never collected, a one-off bounded by start-up), and collect young
    objects every 10,000 allocations instead of 700. In the gateway this took ~0.2 ms off a c=1
    request, a quarter off its CPU at c=32 and half off the p99 there (docs/benchmark-history.md,
    fifth pass); the cost is up to a few MB of cyclic garbage held a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
