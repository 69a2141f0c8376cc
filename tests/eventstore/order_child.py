"""Child process for the PostgreSQL ordering test: appends N events as fast as it can.

Usage: python order_child.py STORE_URL STREAM COUNT. Appends one `RouteChosen` at a
time from 4 threads (streams ``STREAM-0`` … ``STREAM-3``), then prints ``done``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import ANY_VERSION, Recorder, open_recorder
from eventstore.events.session import RouteChosen


def append(recorder: Recorder, stream: str, count: int) -> None:
    """Append `count` events to `stream`, one per append."""
    for n in range(count):
        recorder.append(stream, ANY_VERSION, [RouteChosen(turn=n, provider=stream,
                                                          backend_model="m", reason="order")])


def main() -> None:
    """Append from four threads, then say so."""
    recorder = open_recorder(sys.argv[1])
    count = int(sys.argv[3]) // 4
    threads = [threading.Thread(target=append, args=(recorder, f"{sys.argv[2]}-{n}", count))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
