"""Benchmark the event store against raw apsw doing the same work (a script, not a test).

Measures, in one run:

* **appends/s under concurrent writers** — `--writers` trio tasks (32 by default) each
  append `--appends` single-event appends to their own stream (`--events-per-append`
  K > 1 makes each append carry K events, like a gateway turn's commits of 1 or 2
  events; it is reported as a separate, labelled configuration), through one of:
  ``sessions`` (the session actors: `Sessions.record` → `SessionActor`, which
  submits to the recorder's group commit from its own thread), ``writer`` (`EventStore.append`, the
  writer actor alone) or ``recorder`` (threads calling `SqliteRecorder.append`).
  The raw baseline inserts the same number of rows with plain apsw — per row one
  `cbor2.dumps` of the payload, one SHA-256 and one `INSERT` — in transactions of
  the batch size the group commit actually achieved, with the same `synchronous`.
* **replay events/s with decoding** — `read_all` over a log of a realistic turn mix
  (`TurnStarted` with blob refs, `RouteChosen`, `ModelResponded`), decoded into event
  objects; raw runs the same `SELECT` pages and `cbor2.loads` of every payload.

Each measurement is repeated `--rounds` times, alternating ours and raw so both see
the same machine load, and the best round of each is reported, by wall clock and by
CPU time of this process (all threads; steadier when other work shares the machine).
Usage:

    python tools/bench_eventstore.py [--via sessions,writer,recorder] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import apsw
import cbor2
import structlog
import trio

# A repository script: import the packages from this checkout, whatever the cwd.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eventstore.events  # noqa: F401  (registers the event classes)
from actors import EventStore, Sessions, TurnRequest
from eventstore import ANY_VERSION, Metadata, SqliteRecorder, make_blob
from eventstore.events.session import ModelResponded, RouteChosen, TurnStarted

PAGE = 1000


class Timer:
    """Wall-clock and process CPU time since creation."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process, all threads)."""
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


Best = tuple[float, float]  # the best (wall, cpu) seconds seen


def best_of(best: Best, seen: tuple[float, float]) -> Best:
    """Keep the lowest wall and the lowest CPU time separately."""
    return min(best[0], seen[0]), min(best[1], seen[1])


@dataclass(frozen=True, slots=True)
class Result:
    """One measured line of the report: events per wall second and per CPU second."""

    name: str
    events: int
    events_per_s: float
    raw_events_per_s: float
    events_per_cpu_s: float
    raw_events_per_cpu_s: float
    events_per_commit: float

    @classmethod
    def of(cls, name: str, events: int, ours: Best, raw: Best, per_commit: float) -> Result:
        """Rates from the best times of ours and raw."""
        return cls(name, events, events / ours[0], events / raw[0], events / ours[1],
                   events / raw[1], per_commit)

    @property
    def ratio(self) -> float:
        """Ours over raw by wall clock (goal: at least 0.5)."""
        return self.events_per_s / self.raw_events_per_s

    @property
    def cpu_ratio(self) -> float:
        """Ours over raw by CPU time (steadier on a machine shared with other work)."""
        return self.events_per_cpu_s / self.raw_events_per_cpu_s


def route(n: int) -> RouteChosen:
    """The appended event: small, like most session events."""
    return RouteChosen(turn=1, provider="bench", backend_model=f"model-{n % 3}", reason="bench")


def routes(n: int, k: int) -> list[RouteChosen]:
    """The events of the `n`-th append when each append carries `k` events."""
    return [route(n * k + j) for j in range(k)]


# -- appends ---------------------------------------------------------------------------
async def _sessions_run(path: Path, writers: int, appends: int, durability: str,
                        k: int) -> tuple:
    store = EventStore.open(path, durability=durability)  # type: ignore[arg-type]
    sessions = Sessions.start(store)
    turns = {}
    for w in range(writers):
        request = TurnRequest(request_id=f"req-{w}", model="bench", stream=False)
        turns[w] = await sessions.begin_turn(f"bench-{w}", request)

    async def writer(w: int) -> None:
        for i in range(appends):
            await sessions.record(f"bench-{w}", turns[w], *routes(i, k))

    before = await store.statistics()
    timer = Timer()
    async with trio.open_nursery() as nursery:
        for w in range(writers):
            nursery.start_soon(writer, w)
    elapsed = timer.stop()
    after = await store.statistics()
    await sessions.aclose()
    await store.aclose()
    return elapsed, (after.events - before.events) / max(1, after.batches - before.batches)


async def _writer_run(path: Path, writers: int, appends: int, durability: str,
                      k: int) -> tuple:
    store = EventStore.open(path, durability=durability)  # type: ignore[arg-type]

    async def writer(w: int) -> None:
        for i in range(appends):
            await store.append(f"bench-{w}", i * k, routes(i, k))

    timer = Timer()
    async with trio.open_nursery() as nursery:
        for w in range(writers):
            nursery.start_soon(writer, w)
    elapsed = timer.stop()
    stats = await store.statistics()
    await store.aclose()
    return elapsed, stats.events / max(1, stats.batches)


def _recorder_run(path: Path, writers: int, appends: int, durability: str, k: int) -> tuple:
    recorder = SqliteRecorder(path, durability=durability)  # type: ignore[arg-type]

    def writer(w: int) -> None:
        for i in range(appends):
            recorder.append(f"bench-{w}", i * k, routes(i, k))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    timer = Timer()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = timer.stop()
    per_commit = k * recorder.batched_requests / max(1, recorder.batches)
    recorder.close()
    return elapsed, per_commit


RUNS: dict[str, Callable[..., tuple]] = {
    "sessions": lambda *a: trio.run(_sessions_run, *a),
    "writer": lambda *a: trio.run(_writer_run, *a),
    "recorder": _recorder_run,
}


def raw_append(path: Path, events: int, batch: int, durability: str) -> tuple[float, float]:
    """Seconds for plain apsw to encode, hash and insert `events` rows, `batch` a commit."""
    conn = _raw_connection(path, durability)
    meta = Metadata().encode()
    payloads = [{"turn": 1, "provider": "bench", "backend_model": f"model-{i % 3}",
                 "reason": "bench"} for i in range(events)]
    timer = Timer()
    for start in range(0, events, batch):
        with conn:
            for i in range(start, min(events, start + batch)):
                payload = cbor2.dumps(payloads[i])
                conn.execute(
                    "INSERT INTO events (stream_id, seq, type, version, recorded_at, payload, "
                    "metadata, hash) VALUES (?,?,?,?,?,?,?,?)",
                    (f"raw-{i % 32}", i, "RouteChosen", 1, time.time(), payload, meta,
                     hashlib.sha256(payload).digest()))
    elapsed = timer.stop()
    conn.close()
    return elapsed


def _raw_connection(path: Path, durability: str) -> apsw.Connection:
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {durability}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY AUTOINCREMENT, "
        "stream_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, version INTEGER "
        "NOT NULL, recorded_at REAL NOT NULL, payload BLOB NOT NULL, metadata BLOB NOT NULL, "
        "hash BLOB NOT NULL, event_id TEXT, UNIQUE (stream_id, seq))")
    return conn


def bench_appends(via: str, args: argparse.Namespace, work: Path) -> Result:
    """Best of `rounds` for `via` and for raw apsw at the batching `via` achieved."""
    k = args.events_per_append
    total = args.writers * args.appends * k
    best = best_raw = (float("inf"), float("inf"))
    per_commit = 1.0
    for n in range(args.rounds):
        elapsed, per_commit = RUNS[via](work / f"{via}-{n}.db", args.writers, args.appends,
                                        args.durability, k)
        best = best_of(best, elapsed)
        batch = max(1, round(per_commit))
        best_raw = best_of(best_raw, raw_append(work / f"raw-{via}-{n}.db", total, batch,
                                                args.durability))
    label = f"{via} ({args.writers} writers)" if k == 1 else f"{via} ({args.writers}w, {k} ev)"
    return Result.of(f"append via {label}", total, best, best_raw,
                     per_commit)


# -- replay ----------------------------------------------------------------------------
def build_log(path: Path, events: int) -> None:
    """A log of `events` events in turns of TurnStarted, 2 RouteChosen, ModelResponded."""
    recorder = SqliteRecorder(path)
    system = make_blob({"type": "text", "text": "You are Claude Code. " * 200})
    message = make_blob({"role": "assistant", "content": [{"type": "text", "text": "ok"}]})
    pending = []
    for turn in range(events // 4):
        user = make_blob({"role": "user", "content": f"question {turn}"})
        batch = [
            TurnStarted(turn=turn, request_id=f"req-{turn}", model="claude-sonnet-4-5",
                        stream=True, system=(system[0],), messages=(user[0],),
                        params={"max_tokens": 4096, "temperature": 0.2}, request_bytes=9000),
            route(turn), route(turn + 1),
            ModelResponded(turn=turn, message=message[0], stop_reason="end_turn",
                           usage={"input_tokens": 1200, "output_tokens": 85},
                           latency_ms=812.5, first_byte_ms=210.0, provider="bench"),
        ]
        pending.append(recorder.submit_append(
            f"session-{turn % 50}", ANY_VERSION, batch, metadata=Metadata(request_id=f"r{turn}"),
            blobs=[system, message, user]))
    for future in pending:
        future.result()
    recorder.close()


def replay_ours(path: Path) -> tuple[int, tuple[float, float]]:
    """(events, seconds) to read the whole log with `read_all`, decoding every event."""
    recorder = SqliteRecorder(path)
    timer = Timer()
    count = position = 0
    while page := recorder.read_all(position, PAGE):
        count += len(page)
        position = page[-1].position
    elapsed = timer.stop()
    recorder.close()
    return count, elapsed


def replay_raw(path: Path) -> tuple[int, tuple[float, float]]:
    """(events, seconds) for the same pages with plain apsw and `cbor2.loads`."""
    conn = apsw.Connection(str(path))
    timer = Timer()
    count = position = 0
    while True:
        page = conn.execute(
            "SELECT position, stream_id, seq, type, version, recorded_at, payload, metadata, "
            "event_id FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (position, PAGE)).fetchall()
        if not page:
            break
        for row in page:
            cbor2.loads(row[6])
        count += len(page)
        position = page[-1][0]
    elapsed = timer.stop()
    conn.close()
    return count, elapsed


def bench_replay(args: argparse.Namespace, work: Path) -> Result:
    """Best of `rounds` replays of one log, ours and raw alternating."""
    path = work / "replay.db"
    build_log(path, args.replay_events)
    best = best_raw = (float("inf"), float("inf"))
    count = 0
    for _ in range(args.rounds):
        count, elapsed = replay_ours(path)
        best = best_of(best, elapsed)
        _, elapsed = replay_raw(path)
        best_raw = best_of(best_raw, elapsed)
    return Result.of("replay read_all + decode", count, best, best_raw, 0.0)


# -- report ----------------------------------------------------------------------------
def machine() -> dict[str, str]:
    """nproc, CPU model and Python version, for BENCHMARKS.md."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "apsw": apsw.apsw_version(), "sqlite": apsw.sqlite_lib_version()}


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    """The human-readable report."""
    info = machine()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  nproc={info['nproc']}  "
          f"cpu={info['cpu']}  python={info['python']}  sqlite={info['sqlite']}")
    print(f"# durability={args.durability}  rounds={args.rounds} (best of each)")
    print(f"{'measurement':34} {'events':>7} {'events/s':>9} {'raw/s':>9} {'ratio':>6} "
          f"{'ev/cpu-s':>9} {'raw':>9} {'cpu ratio':>9} {'ev/commit':>9}")
    for r in results:
        print(f"{r.name:34} {r.events:7d} {r.events_per_s:9.0f} {r.raw_events_per_s:9.0f} "
              f"{r.ratio:6.2f} {r.events_per_cpu_s:9.0f} {r.raw_events_per_cpu_s:9.0f} "
              f"{r.cpu_ratio:9.2f} {r.events_per_commit:9.1f}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--via", default="sessions,writer,recorder",
                        help="comma-separated append paths: sessions, writer, recorder")
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--appends", type=int, default=300, help="appends per writer")
    parser.add_argument("--events-per-append", type=int, default=1,
                        help="events in each append (1: the issue's single-event case)")
    parser.add_argument("--replay-events", type=int, default=100_000,
                        help="events in the replay log (0: skip the replay measurement)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--durability", choices=("NORMAL", "FULL"), default="NORMAL")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    unknown = set(args.via.split(",")) - set(RUNS)
    if unknown:
        parser.error(f"unknown --via: {', '.join(sorted(unknown))}")
    if args.events_per_append < 1 or args.writers < 1 or args.appends < 1:
        parser.error("--events-per-append, --writers and --appends must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print the report."""
    args = parse(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-") as tmp:
        work = Path(tmp)
        results = [bench_appends(via, args, work) for via in args.via.split(",")]
        if args.replay_events > 0:  # 0: the append paths only
            results.append(bench_replay(args, work))
    if args.json:
        print(json.dumps({"machine": machine(), "durability": args.durability,
                          "results": [asdict(r) | {"ratio": r.ratio, "cpu_ratio": r.cpu_ratio}
                                      for r in results]},
                         indent=2))
    else:
        print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
