"""Micro-benchmark: the request path's size-bound work on Claude-Code-shaped requests.

    .venv/bin/python tools/bench_request_path.py [--turns 0,300,1500] [--rounds 5]

Claude Code resends the whole conversation every turn, so a long session's request
is hundreds of kilobytes and the gateway's CPU per turn grows with it. For each
history length this times, in one run, each stage Lynkr runs on such a request
against the way it was done before (the baseline), and prints the ratio:

* upstream body: `OpenAIAdapter.build` (translation, then `lynkr._json.dumps`)
  against the same translation written by `json.dumps` (the translation itself is
  today's on both sides, so its tool-call arguments are orjson's in the baseline
  too: the ratio understates the change);
* TurnStarted encode: the registry's generated encoder (blob refs written inline)
  against `encode_payload` (cbor2 with the blob hook) of the same field map.

Best of `--rounds` (CPU time of this process), in ms per request.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from bench_proxy import claude_code_body  # noqa: E402

from eventstore import EVENTS, BlobRef  # noqa: E402
from eventstore._codec import encode_payload  # noqa: E402
from eventstore.events.session import TurnStarted  # noqa: E402
from lynkr.providers._openai import OpenAIAdapter  # noqa: E402
from lynkr.providers._settings import BackendSettings  # noqa: E402

BACKEND = BackendSettings(name="openai", url="http://127.0.0.1:9/v1/chat/completions",
                          base_url="http://127.0.0.1:9/v1")


def best_ms(work: Callable[[], object], rounds: int, repeat: int) -> float:
    """The best of `rounds` of `repeat` calls, in ms of CPU per call."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeat):
            work()
        best = min(best, (time.process_time() - start) / repeat)
    return best * 1000


def stages(turn: int) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(stage, ours, baseline) for the `turn`-th request of a session."""
    _, raw = claude_code_body("lynkr", False, turn)
    body: dict[str, Any] = json.loads(raw)
    adapter = OpenAIAdapter(BACKEND)
    refs = tuple(BlobRef(n.to_bytes(32, "big"), 300 + n) for n in range(len(body["messages"])))
    started = TurnStarted(turn=turn + 1, request_id="req", model="claude-sonnet-4-5",
                          stream=False, system=refs[:3], tools=refs[0], messages=refs,
                          params={"max_tokens": 32000}, request_bytes=len(raw))
    fields = {f.name: getattr(started, f.name) for f in dataclasses.fields(started)}
    return [
        ("upstream body", lambda: adapter.build(body, "gpt", {}),
         lambda: json.dumps(adapter.body_for(body, "gpt")).encode()),
        ("TurnStarted encode", lambda: EVENTS.encode(started),
         lambda: encode_payload(fields)),
    ]


def main(argv: list[str] | None = None) -> int:
    """Print one row per (history length, stage)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", default="0,300,1500",
                        help="comma-separated history lengths (tool round trips)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  best of {args.rounds}, "
          "ms of CPU per request")
    print("| turn | request KB | stage | Lynkr ms | baseline ms | baseline ÷ Lynkr |")
    print("|---|---|---|---|---|---|")
    for turn in (int(t) for t in args.turns.split(",")):
        size = len(claude_code_body("lynkr", False, turn)[1]) // 1024
        for name, ours, baseline in stages(turn):
            repeat = max(1, 2000 // (size + 10))
            mine = best_ms(ours, args.rounds, repeat)
            theirs = best_ms(baseline, args.rounds, repeat)
            print(f"| {turn} | {size} | {name} | {mine:.3f} | {theirs:.3f} | "
                  f"{theirs / mine:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
