"""Where a gateway request's CPU goes, by thread (a script, not a test).

    .venv/bin/python tools/bench_threads.py [--requests 400] [--mode json|stream]
                                            [--concurrency 1] [--repo PATH]
                                            [--shape small|claude-code]

Starts the fake OpenAI upstream and a real `lynkr serve` as `tools/bench_proxy.py`
does, but the gateway runs inside this script's `--gateway` mode, which installs a
SIGUSR1 handler that writes every thread's CPU time (`time.pthread_getcpuclockid`)
to a file. After a warm-up it signals, sends `--requests` requests with
`bench_proxy`'s load generator, signals again and prints µs of CPU per request for
each thread (threads of one name summed), with the p50 and the process's CPU per
request. `--repo` runs another checkout's gateway (its `lynkr` on PYTHONPATH), for
before/after pairs with the same script.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from bench_proxy import run_load, start_pair, stop  # noqa: E402


def gateway(out: str) -> int:
    """Run `lynkr serve` in this process, dumping per-thread CPU on SIGUSR1."""

    def dump(*_: object) -> None:
        seen: dict[str, float] = {"(process)": time.process_time()}
        for thread in threading.enumerate():
            if thread.ident is None:
                continue
            try:
                clock = time.pthread_getcpuclockid(thread.ident)
                seen[thread.name] = seen.get(thread.name, 0.0) + time.clock_gettime(clock)
            except (OSError, ProcessLookupError):
                continue  # the thread ended meanwhile
        with open(out, "a") as f:
            f.write(json.dumps(seen) + "\n")

    signal.signal(signal.SIGUSR1, dump)
    from lynkr.cli import main as lynkr_main

    sys.argv = ["lynkr", "serve"]
    return int(lynkr_main() or 0)


def snapshot(pid: int, out: Path, count: int) -> dict[str, float]:
    """Signal the gateway and wait for its `count`-th dump."""
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = out.read_text().splitlines() if out.exists() else []
        if len(lines) >= count:
            return json.loads(lines[count - 1])  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise SystemExit("the gateway did not answer SIGUSR1")


def main(argv: list[str] | None = None) -> int:
    """Measure and print the per-thread table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--mode", choices=("json", "stream"), default="json")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--shape", choices=("small", "claude-code"), default="small",
                        help="the requests, as `bench_proxy.py --shape`")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to run")
    parser.add_argument("--gateway", help=argparse.SUPPRESS)  # internal: be the gateway
    args = parser.parse_args(argv)
    if args.gateway:
        return gateway(args.gateway)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "threads.jsonl"
        fake, _, lynkr, port = start_pair(
            Path(tmp), [sys.executable, str(Path(__file__).resolve()), "--gateway", str(out)],
            args.repo.resolve())
        try:
            trio.run(run_load, port, "lynkr", False, 4, 100, None)  # warm-up
            before = snapshot(lynkr.pid, out, 1)
            result = trio.run(partial(run_load, port, "lynkr", args.mode == "stream",
                                      args.concurrency, args.requests, lynkr.pid,
                                      shape=args.shape))
            after = snapshot(lynkr.pid, out, 2)
        finally:
            stop(lynkr)
            stop(fake)
    summary = result.summary()
    n = args.requests
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {args.mode} "
          f"({args.shape}) c="
          f"{args.concurrency}, {n} requests, repo {args.repo}: p50 {summary['p50_ms']} ms, "
          f"gateway CPU {summary['cpu_ms_per_request']} ms per request")
    print("| thread | µs CPU per request |")
    print("|---|---|")
    for name in sorted(after, key=lambda k: before.get(k, 0.0) - after[k]):
        spent = (after[name] - before.get(name, 0.0)) / n * 1e6
        if spent >= 1.0:
            print(f"| {name} | {spent:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
