"""The session fold's cost per event as a session grows (a script, not a test).

    .venv/bin/python tools/bench_session_fold.py [--turns 10000]

Folds one session of `--turns` turns (`TurnStarted`, `RouteChosen`, `ModelResponded`
each, as the session actor does: one `evolve_session` per committed event) and prints
the CPU per event (cyclic GC paused while timing) over the first 500 turns (the
baseline, measured in the same run) and over later stretches, with their ratio to
the baseline. A fold whose per-event cost does not grow with the session prints
ratios near 1.0.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventstore import BlobRef, Event, Metadata, Recorded
from eventstore.events.session import (
    ModelResponded,
    RouteChosen,
    SessionStarted,
    TurnStarted,
)
from eventstore.projections.session_state import SessionState, evolve_session

STRETCH = 500
REF = BlobRef(b"\x01" * 32, 3)


def turn_events(n: int) -> list[Event]:
    """The three events of turn `n`."""
    return [TurnStarted(turn=n, request_id=f"req-{n}", model="claude-sonnet-4-5", stream=True),
            RouteChosen(turn=n, provider="openai", backend_model="gpt", reason="default"),
            ModelResponded(turn=n, message=REF, stop_reason="end_turn",
                           usage={"input_tokens": 10, "output_tokens": 5}, latency_ms=9.0)]


def main(argv: list[str] | None = None) -> int:
    """Fold, timing each stretch of `STRETCH` turns."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10_000)
    args = parser.parse_args(argv)
    meta = Metadata()
    seq = 1
    state: SessionState | None = evolve_session(None, Recorded(
        position=1, stream_id="session-b", seq=1, event=SessionStarted(
            session_id="b", source="header", client=None), recorded_at=0.0, metadata=meta))
    rows = []
    for first in range(1, args.turns + 1, STRETCH):
        records: list[Recorded[Event]] = []
        for n in range(first, min(first + STRETCH, args.turns + 1)):
            for event in turn_events(n):
                seq += 1
                records.append(Recorded(position=seq, stream_id="session-b", seq=seq,
                                        event=event, recorded_at=float(seq), metadata=meta))
        gc.collect()
        gc.disable()  # the cyclic GC's passes over the growing heap are not the fold's cost
        started = time.process_time()
        for record in records:
            state = evolve_session(state, record)
        elapsed = time.process_time() - started
        gc.enable()
        rows.append((first, min(first + STRETCH - 1, args.turns), elapsed / len(records) * 1e6))
    base = rows[0][2]
    print("| turns | µs CPU per event | ratio to the first stretch |\n|---|---|---|")
    for first, last, cost in rows:
        if first == 1 or (first - 1) % (STRETCH * 4) == 0 or first == rows[-1][0]:
            print(f"| {first}-{last} | {cost:.2f} | {cost / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
