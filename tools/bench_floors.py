"""Floors under the proxy benchmark: what the fixed stack costs per request, next to Lynkr.

    .venv/bin/python tools/bench_floors.py [--requests 300] [--rounds 2]

In one run it starts the fake OpenAI upstream, six floor servers (`tools/floor_app.py`:
hypercorn's trio worker with a trivial ASGI app that answers a fixed JSON body; the same
app calling the upstream with `httpx.AsyncClient.post`; the same call through the
client's own transport; that call over Lynkr's h11 transport (`H11Transport`); a minimal SSE
relay of a 50-chunk upstream stream, one write per upstream read; the same stream read
whole and written once) and a real `lynkr serve` (as `tools/bench_proxy.py`
starts it), then sends non-streaming requests at concurrency 1 and 32 to each (but the
relays) and 50-chunk streaming requests to the relays and Lynkr, interleaved round by
round, and prints the server's CPU per request (utime + stime, all threads) with p50 and
req/s. The best round of each is kept (the machine is shared; the lowest CPU is the
floor).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_proxy import CHUNKS, Result, run_load, start, stop

REPO = Path(__file__).resolve().parents[1]
FLOORS = ("fixed", "httpx", "transport", "h11", "relay", "drain")
STREAMED = ("relay", "drain", "lynkr")  # the servers that also get 50-chunk streaming requests


async def measure(ports: dict[str, tuple[int, int]], requests: int,
                  rounds: int) -> dict[tuple[str, bool, int], Result]:
    """Best round (lowest CPU per request) of each server, mode and concurrency."""
    best: dict[tuple[str, bool, int], Result] = {}
    for _, (port, _pid) in ports.items():
        await run_load(port, "lynkr", False, 4, 100, None)  # warm-up
    for _ in range(rounds):
        for stream, concurrency in ((False, 1), (False, 32), (True, 1), (True, 32)):
            total = requests if concurrency == 1 else requests * 4
            for name, (port, pid) in ports.items():
                if name not in STREAMED if stream else name in ("relay", "drain"):
                    continue
                result = await run_load(port, "lynkr", stream, concurrency, total, pid)
                result.target = name
                key = (name, stream, concurrency)
                per = (result.cpu_ms or 0.0) / max(1, len(result.latencies))
                old = best.get(key)
                if old is None or per < (old.cpu_ms or 0.0) / max(1, len(old.latencies)):
                    best[key] = result
    return best


def main(argv: list[str] | None = None) -> int:
    """Start everything, measure, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
               "HOME": tmp}
        try:
            fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                                     "--port", "0", "--no-record", "--chunks", str(CHUNKS)],
                                    Path(tmp), env, "LISTENING", use_stderr=False)
            procs.append(fake)
            upstream = f"http://127.0.0.1:{fake_port}/v1"
            ports: dict[str, tuple[int, int]] = {}
            for mode in FLOORS:
                proc, port = start([sys.executable, str(REPO / "tools" / "floor_app.py"),
                                    "--mode", mode, "--upstream", upstream],
                                   Path(tmp), env, "LISTENING", use_stderr=False)
                procs.append(proc)
                ports[mode] = (port, proc.pid)
            lynkr, port = start([sys.executable, "-m", "lynkr", "serve"], Path(tmp),
                                {**env, "PORT": "0", "MODEL_PROVIDER": "openai",
                                 "LOG_LEVEL": "info", "OPENAI_BASE_URL": upstream,
                                 "PROMPT_CACHE_ENABLED": "false"},  # time the proxy path
                                "lynkr: listening on ", use_stderr=True)
            procs.append(lynkr)
            ports["lynkr"] = (port, lynkr.pid)
            best = trio.run(measure, ports, args.requests, args.rounds)
        finally:
            for proc in reversed(procs):
                stop(proc)
    print("| server | mode | conc. | CPU ms/req | p50 ms | req/s | errors |")
    print("|---|---|---|---|---|---|---|")
    for (name, _, concurrency), result in best.items():
        s = result.summary()
        print(f"| {name} | {s['mode']} | {concurrency} | {s['cpu_ms_per_request']:.2f} "
              f"| {s['p50_ms']:.2f} | {s['rps']:.0f} | {s['errors']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
