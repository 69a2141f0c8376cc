"""Micro-benchmark: `ProjectionStore.catch_up` CPU per turn, catching up every K turns.

    .venv/bin/python tools/bench_catch_up.py [--turns 400] [--every 1]

Appends turns shaped like the gateway's (TurnStarted with blobs, then RouteChosen +
ModelResponded) to a fresh SQLite log, catches every projection up after every K turns
and reports the CPU of the catch-ups alone (process time) per turn and per event.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import eventstore.events  # noqa: E402,F401  (registers the event classes)
from eventstore import SqliteRecorder  # noqa: E402
from eventstore.events.session import SessionStarted  # noqa: E402
from eventstore.projections import ProjectionStore, all_projections  # noqa: E402
from tests.eventstore.projections.sample_log import respond, start_turn  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run it and print one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--every", type=int, default=1, help="turns per catch-up")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = SqliteRecorder(Path(tmp) / "lynkr.db")
        store = ProjectionStore(Path(tmp) / "projections.db", all_projections())
        cpu, events, done = 0.0, 0, 0
        for session in range(max(1, args.turns // 20)):
            name = f"s{session}"
            recorder.append(f"session-{name}", 0, [SessionStarted(session_id=name,
                                                                  source="header")])
            for turn in range(1, 21):
                start_turn(recorder, name, turn, "hello", "key")
                respond(recorder, name, turn, "done", [])
                done += 1
                if done % args.every == 0:
                    started = time.process_time()
                    events += store.catch_up(recorder).events
                    cpu += time.process_time() - started
        store.close()
        recorder.close()
    print(f"turns={done} events={events} catch-up CPU ms/turn={cpu * 1000 / done:.3f} "
          f"ms/event={cpu * 1000 / max(events, 1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
