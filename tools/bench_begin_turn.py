"""Benchmark: CPU of a session's `begin_turn` on Claude-Code-sized requests (a script, not a test).

    .venv/bin/python tools/bench_begin_turn.py [--turns 30] [--rounds 3]

Builds requests shaped like the Claude Code CLI's (three system blocks with a ~25 KB
prompt, 24 tools of ~3 KB each, a history that grows by a tool round trip per turn:
~100 KB at turn 1) and runs the `begin_turn` command over `--turns` turns of one
session, in one run, two ways: the baseline encodes every part canonically
(`make_blob`), the session's way goes through its `BlobCache` (a part committed on
an earlier turn is found by its marshal digest and not encoded again; here every
turn's blobs count as committed before the next, as a session's do). It prints µs of
CPU per turn for the first turn and for the rest, and baseline / cache. The best of
`--rounds` is kept, the two ways alternating.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eventstore.events  # noqa: F401  (registers the event classes)
from actors import TurnRequest, begin_turn
from actors._blob_cache import BlobCache
from eventstore import make_blob


def words(rnd: random.Random, n: int) -> str:
    """`n` random lowercase words."""
    return " ".join("".join(rnd.choice(string.ascii_lowercase)
                            for _ in range(rnd.randint(2, 9))) for _ in range(n))


def requests(turns: int) -> list[TurnRequest]:
    """One session's requests, each a fresh JSON parse as the HTTP layer makes them."""
    rnd = random.Random(7)
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197"},
              {"type": "text", "text": "You are Claude Code, Anthropic's official CLI."},
              {"type": "text", "text": words(rnd, 3500), "cache_control": {"type": "ephemeral"}}]
    tools = [{"name": f"Tool{i}", "description": words(rnd, 300), "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {f"p{j}": {"type": "string", "description": words(rnd, 15)}
                       for j in range(6)},
        "required": ["p0"], "additionalProperties": False}} for i in range(24)]
    history: list[dict[str, Any]] = [{"role": "user", "content": words(rnd, 30)}]
    out = []
    for turn in range(1, turns + 1):
        body = json.dumps({"system": system, "tools": tools, "messages": history})
        parsed = json.loads(body)
        out.append(TurnRequest(request_id=f"r{turn}", model="claude-sonnet-4-6", stream=True,
                               system=parsed["system"], tools=parsed["tools"],
                               messages=parsed["messages"], request_bytes=len(body)))
        history = [*history,
                   {"role": "assistant", "content": [
                       {"type": "text", "text": words(rnd, 20)},
                       {"type": "tool_use", "id": f"t{turn}", "name": "Bash",
                        "input": {"command": "ls"}}]},
                   {"role": "user", "content": [
                       {"type": "tool_result", "tool_use_id": f"t{turn}",
                        "content": words(rnd, 120)}]}]
    return out


def run(batch: list[TurnRequest], make: Callable[[set[bytes]], Callable[[Any], Any]]
        ) -> list[float]:
    """CPU seconds of each turn's `begin_turn`; its blobs count as committed afterwards."""
    stored: set[bytes] = set()
    blob = make(stored)
    times = []
    for request in batch:
        started = time.process_time()
        decision = begin_turn(None, "bench", request, blob=blob)
        times.append(time.process_time() - started)
        stored.update(ref.digest for ref, _ in decision.blobs)
    return times


def main(argv: list[str] | None = None) -> int:
    """Run both ways and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    batch = requests(args.turns)
    ways: dict[str, Callable[[set[bytes]], Callable[[Any], Any]]] = {
        "make_blob": lambda _stored: make_blob,
        "BlobCache": lambda stored: BlobCache(stored).make,
    }
    best: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, make in ways.items():
            times = run(batch, make)
            if name not in best or sum(times) < sum(best[name]):
                best[name] = times
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.turns} turns, "
          f"request {batch[0].request_bytes // 1000}-{batch[-1].request_bytes // 1000} KB, "
          f"best of {args.rounds}; µs of CPU per begin_turn")
    print("| way | turn 1 | turns 2+ (mean) | make_blob / this, turns 2+ |")
    print("|---|---|---|---|")
    base = best["make_blob"]
    for name, times in best.items():
        rest = sum(times[1:]) / max(1, len(times) - 1)
        base_rest = sum(base[1:]) / max(1, len(base) - 1)
        print(f"| {name} | {times[0] * 1e6:.0f} | {rest * 1e6:.0f} | "
              f"{base_rest / rest if rest else float('inf'):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
