"""Scale-out cost: one gateway on SQLite, one on PostgreSQL, two on PostgreSQL.

    .venv/bin/python tools/bench_scaleout.py [--requests 1200] [--rounds 2]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--json out.json]

In one run it starts the fake upstream and, in turn, three setups of real `lynkr serve`
processes (fresh data directories, prompt cache off), and sends `--requests` small
non-streaming turns at concurrency 32, one session per connection:

- `sqlite`: one gateway on its embedded SQLite log;
- `pg-1`: one gateway on a fresh PostgreSQL database (`LYNKR_STORE_URL`);
- `pg-2`: two gateways on one fresh PostgreSQL database, the load split between them (16
  connections each, every connection alternating between the two gateways request by
  request, so every session's turns land on both).

It reports turns/s, the gateways' CPU per turn (utime + stime of the gateway processes
and their children, from /proc; the database server's CPU is not included) and the
retried session conflicts (`/health` `sessions.conflicts_retried`). Goals (issue #23):
CPU per turn with two gateways on PostgreSQL within 15 % of one gateway on PostgreSQL;
one gateway on PostgreSQL within 30 % of its CPU per turn on SQLite; retried conflicts
≤ 1 % of turns under alternating routing. The machine has 2 cores, so judge by cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import trio

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.bench_proxy import Connection, Result, bodies, cpu_seconds, start, stop

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 32


def _admin(url: str, sql: str) -> None:
    import psycopg  # the PostgreSQL driver the store uses

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


async def _connect(port: int) -> Connection:
    return Connection(await trio.open_tcp_stream("127.0.0.1", port), f"127.0.0.1:{port}")


async def _load(ports: list[int], total: int) -> tuple[float, int]:
    """`total` turns over 32 sessions, each on its own keep-alive connection to every
    gateway, sending its turns to the gateways in turn. Returns (elapsed s, errors)."""
    path, body = bodies("lynkr", False)
    remaining = [total]
    result = Result("lynkr", "json", CONCURRENCY)

    async def worker(index: int) -> None:
        conns = [await _connect(p) for p in ports]
        headers = [("x-session-id", f"scale-{index}-{uuid.uuid4().hex[:8]}")]
        turn = 0
        while remaining[0] > 0:
            remaining[0] -= 1
            slot = turn % len(conns)
            if conns[slot].closed:
                await conns[slot].stream.aclose()
                conns[slot] = await _connect(ports[slot])
            await conns[slot].post(path, body, headers, result)
            turn += 1
        for conn in conns:
            await conn.stream.aclose()

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(CONCURRENCY):
            nursery.start_soon(worker, index)
    return time.perf_counter() - started, result.errors


def _setup(name: str, tmp: Path, fake_port: int, count: int, store: str | None
           ) -> list[tuple[Any, int]]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "HOME": str(tmp), "PORT": "0", "MODEL_PROVIDER": "openai", "LOG_LEVEL": "warning",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
           "PROMPT_CACHE_ENABLED": "false", "LOOP_GUARD_REPEATS": "off"}
    if store:
        env["LYNKR_STORE_URL"] = store
    gateways = []
    for i in range(count):
        directory = tmp / f"{name}-{i}"
        directory.mkdir(parents=True)
        gateways.append(start([sys.executable, "-m", "lynkr", "serve"], directory, env,
                              "lynkr: listening on ", use_stderr=True))
    return gateways


def _run(name: str, tmp: Path, fake_port: int, count: int, store: str | None,
         requests: int) -> dict[str, Any]:
    gateways = _setup(name, tmp, fake_port, count, store)
    try:
        ports = [port for _, port in gateways]
        trio.run(_load, ports, 64)  # warm-up: sessions, pools, JIT-free but cache-warm
        before = sum(cpu_seconds(proc.pid) for proc, _ in gateways)
        elapsed, errors = trio.run(_load, ports, requests)
        cpu = sum(cpu_seconds(proc.pid) for proc, _ in gateways) - before
        retried = sum(httpx.get(f"http://127.0.0.1:{p}/health").json()
                      .get("sessions", {}).get("conflicts_retried", 0) for p in ports)
    finally:
        for proc, _ in gateways:
            stop(proc)
    return {"setup": name, "turns_per_s": round(requests / elapsed, 1),
            "cpu_ms_per_turn": round(cpu * 1000 / requests, 3), "retried": retried,
            "retried_pct": round(100 * retried / (requests + 64), 2), "errors": errors}


def main(argv: list[str] | None = None) -> int:
    """Run the three setups `--rounds` times, interleaved, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", default=os.environ.get(
        "LYNKR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp_name:
        tmp = Path(tmp_name)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
        fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                                 "--port", "0", "--no-record"], tmp, env, "LISTENING",
                                use_stderr=False)
        try:
            for r in range(args.rounds):
                for name, count, needs_pg in (("sqlite", 1, False), ("pg-1", 1, True),
                                              ("pg-2", 2, True)):
                    store = None
                    database = f"lynkr_bench_{uuid.uuid4().hex[:10]}"
                    if needs_pg:
                        _admin(args.postgres, f"CREATE DATABASE {database}")
                        store = args.postgres.rsplit("/", 1)[0] + "/" + database
                    try:
                        runs.append({**_run(f"{name}", tmp / f"r{r}", fake_port, count, store,
                                            args.requests), "round": r})
                    finally:
                        if needs_pg:
                            _admin(args.postgres, f"DROP DATABASE {database} WITH (FORCE)")
                    print(json.dumps(runs[-1]), flush=True)
        finally:
            stop(fake)
    medians = {}
    for name in ("sqlite", "pg-1", "pg-2"):
        cells = [run for run in runs if run["setup"] == name]
        cpu = sorted(c["cpu_ms_per_turn"] for c in cells)[len(cells) // 2]
        rate = sorted(c["turns_per_s"] for c in cells)[len(cells) // 2]
        medians[name] = {"cpu_ms_per_turn": cpu, "turns_per_s": rate,
                         "retried": sum(c["retried"] for c in cells)}
    pg1, pg2, lite = medians["pg-1"], medians["pg-2"], medians["sqlite"]
    print(f"sqlite  {lite['turns_per_s']:8.1f} turns/s  {lite['cpu_ms_per_turn']:.2f} ms CPU/turn")
    print(f"pg-1    {pg1['turns_per_s']:8.1f} turns/s  {pg1['cpu_ms_per_turn']:.2f} ms CPU/turn  "
          f"= {pg1['cpu_ms_per_turn'] / lite['cpu_ms_per_turn']:.2f} x sqlite (goal <= 1.30)")
    print(f"pg-2    {pg2['turns_per_s']:8.1f} turns/s  {pg2['cpu_ms_per_turn']:.2f} ms CPU/turn  "
          f"= {pg2['cpu_ms_per_turn'] / pg1['cpu_ms_per_turn']:.2f} x pg-1 (goal <= 1.15); "
          f"{pg2['retried']} conflicts retried")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
