"""The floors under an append through the actors (a script, not a test).

`tools/bench_eventstore.py` compares whole append paths with raw apsw. This script
measures, in the same run and in CPU time of the process (all threads), the parts
such a path cannot go below, for the issue's single-event appends:

* ``raw``: plain apsw encoding, hashing and inserting one row per event, in
  transactions of `--batch` rows (the baseline of the issue).
* ``recorder``: `SqliteRecorder.submit_append` from one plain thread, `--batch`
  appends in flight at a time: the event store alone, with no thread waiting per
  append and no actor. Its events (and stream ids) are built before the timer starts,
  as ``raw`` builds its payload maps before its timer: both time the store, not the
  making of what is stored.
* ``trio-direct``: `--writers` trio tasks submitting straight into the recorder on
  the trio thread and awaiting each commit (a `TrioFuture` deferred reply): every
  crossing trio needs, but no actor.
* ``empty-ask``: `--writers` trio tasks asking `--writers` idle `TrioActor`s that
  answer at once: the price of one trio → actor → trio round trip, with no work.
* ``empty-ask-disp``: the same asks to `DispatchedActor`s (the session actors' kind:
  all of them on one dispatcher's workers instead of a thread each).
* ``thread-hop``: two plain threads passing a token back and forth over two
  `queue.SimpleQueue`s, per round trip: what waking a sleeping thread and being woken
  costs on this machine, whatever Lynkr does (a VM makes it expensive).

An append through a session actor pays about ``trio-direct`` plus ``empty-ask``
plus the session's own command and fold. Usage:

    python tools/bench_append_floor.py [--batch 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import queue
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors import DispatchedActor, TrioActor, TrioFuture
from eventstore import SqliteRecorder
from tools.bench_eventstore import Timer, raw_append, route


def recorder_floor(path: Path, events: int, batch: int) -> float:
    """CPU seconds for one thread to append `events` single events, `batch` in flight."""
    recorder = SqliteRecorder(path)
    versions = [0] * 32
    streams = [f"bench-{stream}" for stream in range(32)]
    ready = [route(n) for n in range(events)]  # as `raw` builds its payloads before timing
    timer = Timer()
    for start in range(0, events, batch):
        pending = []
        for n in range(start, min(events, start + batch)):
            stream = n % 32
            pending.append(recorder.submit_append(streams[stream], versions[stream],
                                                  [ready[n]]))
            versions[stream] += 1
        for future in pending:
            future.result()
    cpu = timer.stop()[1]
    recorder.close()
    return cpu


def trio_direct_floor(path: Path, writers: int, appends: int) -> float:
    """CPU seconds for trio tasks submitting straight into the recorder, no actor."""
    recorder = SqliteRecorder(path)

    async def writer(w: int) -> None:
        for n in range(appends):
            reply: TrioFuture[Any] = TrioFuture()
            reply.set(recorder.submit_append(f"bench-{w}", n, [route(n)]))
            await reply

    async def main() -> float:
        timer = Timer()
        async with trio.open_nursery() as nursery:
            for w in range(writers):
                nursery.start_soon(writer, w)
        return timer.stop()[1]

    cpu = trio.run(main)
    recorder.close()
    return cpu


class Echo(TrioActor):
    """Answers every message with itself, at once."""

    def on_receive(self, message: Any) -> Any:
        """The empty handler."""
        return message


class DispatchedEcho(DispatchedActor):
    """`Echo` on the default dispatcher."""

    def on_receive(self, message: Any) -> Any:
        """The empty handler."""
        return message


def empty_ask_floor(writers: int, asks: int, actor: type[Any] = Echo) -> float:
    """CPU seconds for `writers` trio tasks each asking its own idle actor `asks` times."""
    refs = [actor.start() for _ in range(writers)]

    async def asker(ref: Any) -> None:
        for n in range(asks):
            await ref.ask(n, block=False)

    async def main() -> float:
        timer = Timer()
        async with trio.open_nursery() as nursery:
            for ref in refs:
                nursery.start_soon(asker, ref)
        return timer.stop()[1]

    try:
        return trio.run(main)
    finally:
        for ref in refs:
            ref.stop()


def thread_hop_floor(hops: int) -> float:
    """CPU seconds for `hops` round trips of a token between two sleeping threads."""
    there: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    back: queue.SimpleQueue[int] = queue.SimpleQueue()

    def echo() -> None:
        while (token := there.get()) is not None:
            back.put(token)

    thread = threading.Thread(target=echo)
    thread.start()
    timer = Timer()
    for n in range(hops):
        there.put(n)
        back.get()
    cpu = timer.stop()[1]
    there.put(None)
    thread.join()
    return cpu


def main(argv: list[str] | None = None) -> int:
    """Measure every floor `--rounds` times, interleaved; print the best of each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--appends", type=int, default=300, help="appends per writer")
    parser.add_argument("--batch", type=int, default=16,
                        help="events per commit for raw and recorder (use the ev/commit "
                             "bench_eventstore.py reports)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    events = args.writers * args.appends
    runs: dict[str, Callable[[Path], float]] = {
        "raw": lambda p: raw_append(p, events, args.batch, "NORMAL")[1],
        "recorder": lambda p: recorder_floor(p, events, args.batch),
        "trio-direct": lambda p: trio_direct_floor(p, args.writers, args.appends),
        "empty-ask": lambda p: empty_ask_floor(args.writers, args.appends),
        "empty-ask-disp": lambda p: empty_ask_floor(args.writers, args.appends,
                                                    DispatchedEcho),
        "thread-hop": lambda p: thread_hop_floor(events),
    }
    best = dict.fromkeys(runs, float("inf"))
    with tempfile.TemporaryDirectory(prefix="lynkr-floor-") as tmp:
        for n in range(args.rounds):
            for name, run in runs.items():
                best[name] = min(best[name], run(Path(tmp) / f"{name}-{n}.db"))
    print(f"# {events} single-event appends, {args.writers} writers, batch {args.batch}, "
          f"best of {args.rounds}; µs of process CPU per event (per ask, per round trip)")
    for name, seconds in best.items():
        micros = seconds / events * 1e6
        print(f"{name:14} {micros:7.1f}  raw/this {best['raw'] / seconds:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
