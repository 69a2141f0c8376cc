"""Agent-loop overhead: Lynkr's own CPU per server-tool step, against plain turns.

    .venv/bin/python tools/bench_loop.py [--turns 40] [--rounds 3] [--json out.json]

One run starts the fake upstream and a real `lynkr serve` (`LYNKR_SERVER_TOOLS=tasks`,
prompt cache off, a fresh data directory) and alternates, `--rounds` times, two phases
of `--turns` requests each on one keep-alive connection:

- **plain**: the upstream answers text; every request is one turn with one model call;
- **loop**: the upstream asks for `workspace_tasks_list` three times (one call per
  step), then answers; every request is one turn with four model calls and three
  server tool calls (policy decision, start, result: each recorded).

It reports the gateway's CPU per turn in each phase (utime + stime of the gateway and
its children, from /proc) and the CPU each loop step adds: (loop turn - plain turn) / 3.
A step is one more upstream call (build the request with the grown history, send it,
read and translate the answer) plus the tool call under policy (its decision, start and
result events) plus the tool itself, which reads an empty task list. A plain turn pays
the client's HTTP exchange, the session's begin and finish commits and one upstream
call. Goal (issue #19): Lynkr's own CPU per step, excluding the tool and the upstream,
≤ 1 ms; what this prints includes the step's upstream call.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.bench_proxy import cpu_seconds, start_pair, stop

REPO = Path(__file__).resolve().parents[1]
ASK = {"model": "claude-sonnet-4-6", "max_tokens": 128,
       "messages": [{"role": "user", "content": "what is on the task list?"}]}
TOOL_STEP = {"text": "", "tool_calls": [{"name": "workspace_tasks_list", "arguments": {}}]}


def _phase(client: httpx.Client, url: str, fake: str, pid: int, turns: int,
           loop: bool, start_index: int) -> float:
    """Gateway CPU ms per turn over `turns` requests (each its own session)."""
    steps: list[dict[str, Any]] = []
    for i in range(turns):
        if loop:
            steps += [{**TOOL_STEP, "tool_calls": [{**TOOL_STEP["tool_calls"][0],  # type: ignore[index]
                                                     "id": f"call_{i}_{k}"}]} for k in range(3)]
        steps.append({"text": "Nothing yet."})
    client.post(fake + "/_script", json={"responses": steps}).raise_for_status()
    before = cpu_seconds(pid)
    for i in range(turns):
        answer = client.post(url + "/v1/messages", json=ASK,
                             headers={"x-session-id": f"bench-loop-{start_index + i}"})
        answer.raise_for_status()
        assert answer.json()["content"][-1]["text"] == "Nothing yet.", answer.text
    return (cpu_seconds(pid) - before) * 1000 / turns


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        env = {"LYNKR_SERVER_TOOLS": "tasks", "PROMPT_CACHE_ENABLED": "false",
               "LOOP_GUARD_REPEATS": "off", "LOG_LEVEL": "warning",
               "WORKSPACE_ROOT": tmp}
        fake, fake_port, lynkr, port = start_pair(
            Path(tmp), [sys.executable, "-m", "lynkr", "serve"], REPO, env)
        plain: list[float] = []
        looped: list[float] = []
        try:
            url, fake_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{fake_port}"
            with httpx.Client(timeout=60) as client:
                _phase(client, url, fake_url, lynkr.pid, 5, True, 10**6)  # warm-up
                _phase(client, url, fake_url, lynkr.pid, 5, False, 2 * 10**6)
                for r in range(args.rounds):
                    base = r * 2 * args.turns
                    plain.append(_phase(client, url, fake_url, lynkr.pid, args.turns, False,
                                        base))
                    looped.append(_phase(client, url, fake_url, lynkr.pid, args.turns, True,
                                         base + args.turns))
                    time.sleep(0.2)
        finally:
            stop(lynkr)
            stop(fake)
    plain_ms, loop_ms = sorted(plain)[len(plain) // 2], sorted(looped)[len(looped) // 2]
    per_step = (loop_ms - plain_ms) / 3
    figures = {"plain_turn_cpu_ms": round(plain_ms, 3), "loop_turn_cpu_ms": round(loop_ms, 3),
               "loop_turn_vs_4_plain": round(loop_ms / (4 * plain_ms), 3),
               "step_vs_plain_turn": round(per_step / plain_ms, 3),
               "per_step_cpu_ms": round(per_step, 3), "rounds": args.rounds,
               "turns": args.turns, "plain_runs": plain, "loop_runs": looped}
    print(f"plain turn (1 model call)            {plain_ms:7.3f} ms CPU  (median of "
          f"{args.rounds} runs of {args.turns})")
    print(f"loop turn (4 model calls, 3 tools)   {loop_ms:7.3f} ms CPU  = "
          f"{figures['loop_turn_vs_4_plain']:.2f} x 4 plain turns")
    print(f"CPU per loop step, upstream call in  {per_step:7.3f} ms      = "
          f"{figures['step_vs_plain_turn']:.2f} x a plain turn")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
