"""Benchmark: one session's turns at concurrency 1, inline asks against the workers (a script).

    .venv/bin/python tools/bench_session_turn.py [--turns 2000] [--rounds 3]

A gateway turn at concurrency 1 asks its session twice: `begin_turn` (the request,
durable before the upstream sees it) and `finish_turn` (the answer, durable before the
client sees it). This runs `--turns` such turns, one after the other, through
`Sessions` over a real SQLite file, in one run, two ways: `workers` (`inline=False`:
every command crosses to a dispatcher worker and its reply back to trio) and `inline`
(the default: a lone command runs on the trio thread, its commit too). It prints, per
turn, wall µs (p50 and mean) and CPU µs of the process, and workers / inline. Best of
`--rounds`, the two ways alternating.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eventstore.events  # noqa: F401  (registers the event classes)
from actors import EventStore, Sessions, TurnRequest
from eventstore import make_blob
from eventstore.events.session import ModelResponded


async def turns(path: Path, count: int, inline: bool) -> tuple[list[float], float]:
    """(wall seconds per turn, CPU seconds of them all) for `count` turns of one session."""
    store = EventStore.open(path)
    sessions = Sessions.start(store, inline=inline)
    ref, data = make_blob({"role": "assistant", "content": [{"type": "text", "text": "ok"}]})
    walls = []
    await sessions.begin_turn("bench", TurnRequest(request_id="warm", model="m", stream=False))
    cpu = time.process_time()
    for n in range(count):
        started = time.perf_counter()
        request = TurnRequest(request_id=f"r{n}", model="claude-sonnet-4-6", stream=False,
                              messages=[{"role": "user", "content": f"question {n}"}],
                              provider="bench", backend_model="m", request_bytes=200)
        turn = await sessions.begin_turn("bench", request)
        await sessions.finish_turn("bench", turn, ModelResponded(
            turn=turn, message=ref, stop_reason="end_turn", usage={"output_tokens": 1},
            latency_ms=1.0), blobs=[(ref, data)])
        walls.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    await sessions.aclose()
    await store.aclose()
    return walls, cpu


def main(argv: list[str] | None = None) -> int:
    """Run both ways and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    best: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-") as tmp:
        for n in range(args.rounds):
            for name, inline in (("workers", False), ("inline", True)):
                walls, cpu = trio.run(turns, Path(tmp) / f"{name}-{n}.db", args.turns, inline)
                seen = (statistics.median(walls), statistics.fmean(walls), cpu / args.turns)
                old = best.get(name)
                best[name] = seen if old is None else tuple(map(min, old, seen))  # type: ignore[assignment]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.turns} turns "
          f"(begin_turn + finish_turn), best of {args.rounds}; µs per turn")
    print("| way | wall p50 | wall mean | CPU | workers / this (p50, CPU) |")
    print("|---|---|---|---|---|")
    base = best["workers"]
    for name, (p50, mean, cpu) in best.items():
        print(f"| {name} | {p50 * 1e6:.0f} | {mean * 1e6:.0f} | {cpu * 1e6:.0f} | "
              f"{base[0] / p50:.2f}, {base[2] / cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
