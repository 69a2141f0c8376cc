"""Child process for the crash-safety test: appends forever, printing each acknowledgement.

Usage: python crash_child.py DB_PATH_OR_STORE_URL [THREADS]. Each thread owns stream ``crash-<n>``
and appends one `RouteChosen` at a time whose `turn` is the sequence number it
expects, printing ``<stream> <seq>`` only after `append` returned (the commit is
done). The parent SIGKILLs it at a random moment.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import Recorder, open_recorder
from eventstore.events.session import RouteChosen

_print_lock = threading.Lock()


def append_forever(recorder: Recorder, stream: str) -> None:
    """Append to `stream` until killed, acknowledging each committed append on stdout."""
    version = recorder.stream_version(stream)
    while True:
        seq = version + 1
        event = RouteChosen(turn=seq, provider=stream, backend_model="m", reason="crash")
        recorder.append(stream, version, [event])
        version = seq
        with _print_lock:
            sys.stdout.write(f"{stream} {seq}\n")
            sys.stdout.flush()


def main() -> None:
    """Start the appending threads and wait for the SIGKILL."""
    recorder = open_recorder(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    workers = [threading.Thread(target=append_forever, args=(recorder, f"crash-{n}"),
                                daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
