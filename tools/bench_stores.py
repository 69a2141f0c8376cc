"""Benchmark the event log on SQLite against PostgreSQL (a script, not a test).

In one run, for each store: **appends/s** with `--writers` threads (32) each making
`--appends` single-event appends to its own stream through `Recorder.append` (group
commit on both stores), and **replay events/s**: `read_all` pages over that log,
decoded into events. Wall clock and this process's CPU time, best of `--rounds`.
PostgreSQL is the server at `--postgres` (default: the local one); the script makes
and drops a database of its own. Usage:

    python tools/bench_stores.py [--writers 32] [--appends 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import Recorder, open_recorder
from eventstore.events.session import RouteChosen


def appends(recorder: Recorder, writers: int, count: int, tag: str) -> tuple[float, float]:
    """(wall s, CPU s) for `writers` threads each appending `count` events one at a time."""
    def work(n: int) -> None:
        for seq in range(count):
            recorder.append(f"{tag}-{n}", seq, [RouteChosen(turn=seq, provider="p",
                                                            backend_model="m", reason="bench")])
    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    wall, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - wall, time.process_time() - cpu


def replay(recorder: Recorder) -> tuple[int, float, float]:
    """(events, wall s, CPU s) reading and decoding the whole log."""
    wall, cpu = time.perf_counter(), time.process_time()
    after = events = 0
    while batch := recorder.read_all(after, 1000):
        after, events = batch[-1].position, events + len(batch)
    return events, time.perf_counter() - wall, time.process_time() - cpu


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    """Best-of-rounds appends/s and replay events/s on the store at `url`."""
    recorder = open_recorder(url)
    best: dict[str, float] = {}
    try:
        for round_ in range(args.rounds):
            wall, cpu = appends(recorder, args.writers, args.appends, f"r{round_}")
            total = args.writers * args.appends
            best["appends/s"] = max(best.get("appends/s", 0), total / wall)
            best["append CPU µs"] = min(best.get("append CPU µs", 1e9), cpu / total * 1e6)
            events, wall, cpu = replay(recorder)
            best["replay events/s"] = max(best.get("replay events/s", 0), events / wall)
    finally:
        recorder.close()
    return best


def main() -> None:
    """Run both stores and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"lynkr_bench_{secrets.token_hex(4)}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = {"SQLite": measure(f"sqlite:///{tmp}/lynkr.db", args),
                       "PostgreSQL": measure(args.postgres.rsplit("/", 1)[0] + "/" + name, args)}
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())
    print(f"{'store':<12} {'appends/s':>10} {'append CPU µs':>14} {'replay events/s':>16}")
    for store, row in results.items():
        print(f"{store:<12} {row['appends/s']:>10.0f} {row['append CPU µs']:>14.1f} "
              f"{row['replay events/s']:>16.0f}")


if __name__ == "__main__":
    main()
