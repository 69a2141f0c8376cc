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
* ``lean``: the leanest pipeline the issue's shape allows, with none of Lynkr in it:
  `--writers` trio tasks each await their single-event append; the appends made in one
  trio tick go to one plain thread in one queue put; that thread does ``raw``'s work
  per row (one payload map, one `cbor2.dumps`, one chained SHA-256), inserts the whole
  batch with one `executemany` in one transaction and wakes the batch's tasks with one
  `run_sync_soon`. No actor, no pykka, no validation, no metadata, no stream heads, no
  typed events (and `executemany` is cheaper per row than ``raw``'s `execute`). What it
  costs over ``raw`` is the price of trio awaiting a commit made on another thread:
  no append path that commits off trio's thread can beat it.
* ``session-work``: a session actor's own work per single-event append, with no store,
  no thread and no actor machinery: its command (`record_events`), the append's
  `Metadata`, the committed records built from the append's result (`as_committed`)
  and the fold of the new state (`fold_session`), from one thread.
* ``lean-inline``: ``lean`` with each batch committed on trio's own thread, so no
  thread is crossed at all. Not a design Lynkr can use: trio's thread serves every
  HTTP request, and it would stop for every commit (an fsync each at ``FULL``). It
  shows what the thread crossing itself costs.

An append through a session actor pays about ``trio-direct`` plus ``empty-ask``
plus the session's own command and fold; at the very least it pays ``lean`` (or
``lean-inline``, for a design that commits on trio's thread), plus what the event store
does beyond a raw row (``recorder`` minus ``raw``), plus ``session-work``; the last
line prints the ratios those sums allow. Each floor is reported by CPU time of the
process (all threads) and by wall clock (the issue's ratio is by wall clock). Usage:

    python tools/bench_append_floor.py [--batch 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import outcome
import structlog
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors import DispatchedActor, TrioActor, TrioFuture, TurnRequest
from actors._session_commands import begin_turn, record_events
from actors._session_commit import as_committed
from eventstore import AppendResult, MemoryRecorder, Metadata, SqliteRecorder
from eventstore.projections.session_state import fold_session
from tools.bench_eventstore import Best, Timer, _raw_connection, best_of, raw_append, route


def recorder_floor(path: Path, events: int, batch: int) -> Best:
    """(wall, CPU) seconds for one thread to append `events` single events, `batch` in flight."""
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
    elapsed = timer.stop()
    recorder.close()
    return elapsed


def trio_direct_floor(path: Path, writers: int, appends: int) -> Best:
    """(wall, CPU) seconds for trio tasks submitting straight into the recorder, no actor."""
    recorder = SqliteRecorder(path)

    async def writer(w: int) -> None:
        for n in range(appends):
            reply: TrioFuture[Any] = TrioFuture()
            reply.set(recorder.submit_append(f"bench-{w}", n, [route(n)]))
            await reply

    async def main() -> Best:
        timer = Timer()
        async with trio.open_nursery() as nursery:
            for w in range(writers):
                nursery.start_soon(writer, w)
        return timer.stop()

    elapsed = trio.run(main)
    recorder.close()
    return elapsed


def session_work_floor(events: int) -> Best:
    """(wall, CPU) seconds of a session's own work for `events` single-event appends."""
    store = MemoryRecorder()
    stream = "session-bench"
    opened = begin_turn(None, "bench", TurnRequest(request_id="req", model="bench",
                                                     stream=False))
    store.append(stream, 0, opened.events)
    state = fold_session(store.read_stream(stream))
    assert state is not None
    turn, version, position = state.next_turn - 1, state.version, state.last_position
    ready = [route(n) for n in range(events)]  # as `raw` builds its payloads before timing
    now = time.time()
    timer = Timer()
    for event in ready:
        decision = record_events(state, turn, (event,))
        metadata = Metadata(request_id="req", actor="session:bench")
        position += 1
        result = AppendResult(stream, version + 1, position, position, now)
        committed = as_committed(stream, version, decision.events, metadata, result)
        assert committed is not None
        state = fold_session(committed, start=state)
        assert state is not None
        version = state.version
    return timer.stop()


_LEAN_INSERT = ("INSERT INTO events (stream_id, seq, type, version, recorded_at, payload, "
                "metadata, hash) VALUES (?,?,?,?,?,?,?,?)")


class _LeanLog:
    """What the ``lean`` pipelines keep: per stream its last seq and hash, and the rows."""

    def __init__(self, path: Path) -> None:
        self.conn = _raw_connection(path, "NORMAL")
        self.meta = cbor2.dumps({})
        self.versions: dict[str, int] = {}
        self.heads: dict[str, bytes] = {}

    def commit(self, batch: list[list[Any]]) -> None:
        """``raw``'s work for each [stream, event, task, seq] of `batch`, then one
        `executemany` in one transaction; each item's seq is filled in."""
        now, rows = time.time(), []
        for item in batch:
            stream, event = item[0], item[1]
            seq = self.versions.get(stream, 0) + 1
            payload = cbor2.dumps({"turn": event.turn, "provider": event.provider,
                                   "backend_model": event.backend_model,
                                   "reason": event.reason})
            digest = hashlib.sha256(self.heads.get(stream, b"") + payload).digest()
            rows.append((stream, seq, "RouteChosen", 1, now, payload, self.meta, digest))
            self.versions[stream], self.heads[stream], item[3] = seq, digest, seq
        with self.conn:
            self.conn.executemany(_LEAN_INSERT, rows)

    def close_checked(self, writers: int, appends: int) -> None:
        """Close; raise unless each of `writers` streams holds exactly seqs 1..`appends`."""
        try:
            bad = self.conn.execute(
                "SELECT stream_id FROM events GROUP BY stream_id "
                "HAVING count(*) != ? OR min(seq) != 1 OR max(seq) != ?",
                (appends, appends)).fetchall()
            streams = self.conn.execute(
                "SELECT count(DISTINCT stream_id) FROM events").fetchone()[0]
        finally:
            self.conn.close()
        if bad or streams != writers:
            raise AssertionError(f"lean pipeline lost appends: {len(bad)} bad streams, "
                                 f"{streams} of {writers}")


def _wake(batch: list[list[Any]]) -> None:
    """On trio's thread: resume each item's task with its committed seq."""
    for item in batch:
        trio.lowlevel.reschedule(item[2], outcome.Value(item[3]))


def lean_floor(path: Path, writers: int, appends: int, *, inline: bool = False) -> Best:
    """(wall, CPU) seconds for the ``lean`` pipeline (see module docstring).

    Each of `writers` trio tasks appends `appends` events to its own stream, one at a
    time, awaiting each commit; the appends of one trio tick are one batch. `inline`
    commits each batch on trio's own thread instead of on a plain thread (``lean-inline``).
    The rows are checked at the end: every stream's seqs are exactly 1..`appends`.
    """
    log = _LeanLog(path)
    batches: queue.SimpleQueue[list[list[Any]] | None] = queue.SimpleQueue()
    outbox: list[list[Any]] = []  # [stream, event, task, seq] of this trio tick

    def commit_loop(token: trio.lowlevel.TrioToken) -> None:
        while (batch := batches.get()) is not None:
            log.commit(batch)
            token.run_sync_soon(_wake, batch)

    def flush() -> None:
        batch = outbox[:]
        outbox.clear()
        if inline:
            log.commit(batch)
            _wake(batch)
        else:
            batches.put(batch)

    async def writer(token: trio.lowlevel.TrioToken, w: int) -> None:
        stream = f"lean-{w}"
        for n in range(appends):
            if not outbox:  # the tick's first append: hand the tick's appends over after it
                token.run_sync_soon(flush)
            outbox.append([stream, route(n), trio.lowlevel.current_task(), 0])
            await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    async def main() -> Best:
        token = trio.lowlevel.current_trio_token()
        thread = threading.Thread(target=commit_loop, args=(token,))
        thread.start()
        try:
            timer = Timer()
            async with trio.open_nursery() as nursery:
                for w in range(writers):
                    nursery.start_soon(writer, token, w)
            return timer.stop()
        finally:
            batches.put(None)
            thread.join()

    try:
        elapsed = trio.run(main)
    finally:
        log.close_checked(writers, appends)
    return elapsed


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


def empty_ask_floor(writers: int, asks: int, actor: type[Any] = Echo) -> Best:
    """(wall, CPU) seconds for `writers` trio tasks each asking its own idle actor `asks` times."""
    refs = [actor.start() for _ in range(writers)]

    async def asker(ref: Any) -> None:
        for n in range(asks):
            await ref.ask(n, block=False)

    async def main() -> Best:
        timer = Timer()
        async with trio.open_nursery() as nursery:
            for ref in refs:
                nursery.start_soon(asker, ref)
        return timer.stop()

    try:
        return trio.run(main)
    finally:
        for ref in refs:
            ref.stop()


def thread_hop_floor(hops: int) -> Best:
    """(wall, CPU) seconds for `hops` round trips of a token between two sleeping threads."""
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
    elapsed = timer.stop()
    there.put(None)
    thread.join()
    return elapsed


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
    runs: dict[str, Callable[[Path], Best]] = {
        "raw": lambda p: raw_append(p, events, args.batch, "NORMAL"),
        "recorder": lambda p: recorder_floor(p, events, args.batch),
        "trio-direct": lambda p: trio_direct_floor(p, args.writers, args.appends),
        "empty-ask": lambda p: empty_ask_floor(args.writers, args.appends),
        "empty-ask-disp": lambda p: empty_ask_floor(args.writers, args.appends,
                                                    DispatchedEcho),
        "thread-hop": lambda p: thread_hop_floor(events),
        "session-work": lambda p: session_work_floor(events),
        "lean": lambda p: lean_floor(p, args.writers, args.appends),
        "lean-inline": lambda p: lean_floor(p, args.writers, args.appends, inline=True),
    }
    best: dict[str, Best] = dict.fromkeys(runs, (float("inf"), float("inf")))
    with tempfile.TemporaryDirectory(prefix="lynkr-floor-") as tmp:
        for n in range(args.rounds):
            for name, run in runs.items():
                best[name] = best_of(best[name], run(Path(tmp) / f"{name}-{n}.db"))
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {events} single-event "
          f"appends, {args.writers} writers, batch {args.batch}, best of {args.rounds}; "
          "µs per event (per ask, per round trip)")
    print(f"{'floor':14} {'CPU µs':>7} {'raw/this':>8} {'wall µs':>8} {'raw/this':>8}")
    raw_wall, raw_cpu = best["raw"]
    for name, (wall, cpu) in best.items():
        print(f"{name:14} {cpu / events * 1e6:7.1f} {raw_cpu / cpu:8.2f} "
              f"{wall / events * 1e6:8.1f} {raw_wall / wall:8.2f}")
    # An append through a session actor pays lean's crossing and row work (lean-inline's,
    # if it commits on trio's thread), what the event store does beyond a raw row
    # (recorder - raw) and the session's own work, before any actor machinery.
    extra = [best["recorder"][i] - best["raw"][i] + best["session-work"][i] for i in (0, 1)]
    off, on = ([best[name][i] + extra[i] for i in (0, 1)] for name in ("lean", "lean-inline"))
    print(f"# bound through a session actor, raw / (lean + recorder - raw + session-work): "
          f"{raw_cpu / off[1]:.2f} by CPU, {raw_wall / off[0]:.2f} by wall; committing on "
          f"trio's thread (lean-inline instead of lean): {raw_cpu / on[1]:.2f} by CPU, "
          f"{raw_wall / on[0]:.2f} by wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
