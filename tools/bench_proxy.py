"""Proxy overhead benchmark: Lynkr in front of a fast fake OpenAI upstream, vs. the upstream alone.

    .venv/bin/python tools/bench_proxy.py [--requests 400] [--json out.json]
                                          [--shape small|claude-code]

In one run it starts the fake upstream (`tools/fake_upstream.py --no-record`) and a real
`lynkr serve` process (MODEL_PROVIDER=openai, a fresh data directory, every turn
recorded), then measures, for non-streaming and 50-chunk streaming requests at
concurrency 1 and 32, both directly against the upstream (baseline) and through Lynkr:
latency p50/p99 (added latency = Lynkr - baseline), time to the first SSE event,
requests per second, and the gateway's CPU per request (utime + stime from
/proc/<pid>/stat of the gateway process and of the processes under it, such as its
projection worker, before and after each run). The load generator is a
small h11 client on raw trio sockets with keep-alive, so it costs little CPU itself.
Each concurrent worker is its own session (as separate Claude Code sessions are).
The requests are one short question (`--shape small`, the issue's benchmark) or, with
`--shape claude-code`, each session's next Claude-Code-sized turn: the CLI's three
system blocks and 24 tools, and a history that grows by a tool round trip per request
(~110 KB at the first turn, ~220 KB at the 300th).
`--paced 200,1000` measures many users at once instead (`tools/bench_paced.py`).
`--session-ids none` sends no session id (each worker its own `x-api-key` instead, as
separate API clients: Lynkr infers one session per client and conversation);
`--sessions-before N` also starts a second gateway that first served N one-turn sessions
and measures each Lynkr cell on both, the fresh one first (target `lynkr+N`).
The gateways run with `LOOP_GUARD_REPEATS=off`: the small shape resends one question,
which the loop guard would otherwise refuse after five identical answers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import trio

REPO = Path(__file__).resolve().parents[1]
CHUNKS = 50
UNSAFE_IN_SESSION_ID = re.compile(r"[^A-Za-z0-9._:-]")
"""Characters Lynkr does not accept in `x-session-id`: it ignores such an id and infers
the session from the request instead (`lynkr/orchestrator/_session.py`)."""


@dataclass
class Result:
    """One measured run."""

    target: str
    mode: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    first_event: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    cpu_ms: float | None = None
    errors: int = 0

    def pct(self, values: list[float], q: float) -> float:
        """The q-quantile of `values`, in ms."""
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers."""
        n = len(self.latencies)
        return {"target": self.target, "mode": self.mode, "concurrency": self.concurrency,
                "requests": n, "errors": self.errors,
                "p50_ms": round(self.pct(self.latencies, 0.5), 3),
                "p99_ms": round(self.pct(self.latencies, 0.99), 3),
                "first_event_p50_ms": round(self.pct(self.first_event, 0.5), 3),
                "rps": round(n / self.elapsed, 1) if self.elapsed else 0.0,
                "cpu_ms_per_request": None if self.cpu_ms is None else round(self.cpu_ms / n, 3)}


class Connection:
    """One keep-alive HTTP/1.1 connection driven by h11."""

    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self.stream = stream
        self.host = host
        self.conn = h11.Connection(h11.CLIENT)
        self.closed = False

    async def post(self, path: str, body: bytes, headers: list[tuple[str, str]],
                   result: Result) -> None:
        """Send one request and read the whole answer, timing the first body byte."""
        started = time.perf_counter()
        request = h11.Request(method="POST", target=path, headers=[
            ("host", self.host), ("content-type", "application/json"),
            ("content-length", str(len(body))), *headers])
        await self.stream.send_all(self.conn.send(request) + self.conn.send(h11.Data(data=body))
                                   + self.conn.send(h11.EndOfMessage()))
        status, first = 0, None
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data) and first is None:
                first = time.perf_counter() - started
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.conn.our_state is h11.MUST_CLOSE:  # the server ends keep-alive (hypercorn:
            self.closed = True                      # after 1,000 requests): reconnect
        else:
            self.conn.start_next_cycle()
        if status != 200:
            result.errors += 1
            return
        result.latencies.append(time.perf_counter() - started)
        if first is not None:
            result.first_event.append(first)


def bodies(target: str, stream: bool) -> tuple[str, bytes]:
    """(path, body) of one request for `target` ('direct' OpenAI or 'lynkr' Anthropic)."""
    messages = [{"role": "user", "content": "benchmark request: say something short"}]
    if target == "direct":
        body: dict[str, Any] = {"model": "fake", "messages": messages, "max_tokens": 256}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return "/v1/chat/completions", json.dumps(body).encode()
    body = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": messages}
    if stream:
        body["stream"] = True
    return "/v1/messages", json.dumps(body).encode()


def claude_code_body(target: str, stream: bool, turn: int) -> tuple[str, bytes]:
    """(path, body) of a session's `turn`-th request shaped like the Claude Code CLI's.

    Three system blocks (a ~25 KB prompt), 24 tools of ~3 KB, and a history that grows
    by a Bash round trip per turn: ~100 KB at turn 0. The direct target gets the same
    content as an OpenAI chat body.
    """
    system, tools = _CLAUDE_CODE
    history: list[dict[str, Any]] = [{"role": "user", "content": "list the files"}]
    for n in range(turn):
        history += [
            {"role": "assistant", "content": [
                {"type": "text", "text": f"Running ls for step {n}."},
                {"type": "tool_use", "id": f"toolu_{n}", "name": "Bash",
                 "input": {"command": "ls -la", "description": "List files"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": f"toolu_{n}",
                 "content": "total 8\n-rw-r--r-- 1 root root 120 README.md\n" * 3}]}]
    if target == "direct":
        body: dict[str, Any] = {
            "model": "fake", "max_tokens": 256,
            "messages": [{"role": "system", "content": system[2]["text"]},
                         *({"role": m["role"], "content": json.dumps(m["content"])}
                           for m in history)],
            "tools": [{"type": "function", "function": {
                "name": t["name"], "description": t["description"],
                "parameters": t["input_schema"]}} for t in tools]}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return "/v1/chat/completions", json.dumps(body).encode()
    body = {"model": "claude-sonnet-4-6", "max_tokens": 32000, "system": system,
            "tools": tools, "messages": history, "metadata": {"user_id": "bench"}}
    if stream:
        body["stream"] = True
    return "/v1/messages", json.dumps(body).encode()


def _claude_code_parts() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rnd = random.Random(7)

    def words(n: int) -> str:
        return " ".join("".join(rnd.choice(string.ascii_lowercase)
                                for _ in range(rnd.randint(2, 9))) for _ in range(n))

    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197"},
              {"type": "text", "text": "You are Claude Code, Anthropic's official CLI."},
              {"type": "text", "text": words(3500), "cache_control": {"type": "ephemeral"}}]
    tools = [{"name": f"Tool{i}", "description": words(300), "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {f"p{j}": {"type": "string", "description": words(15)} for j in range(6)},
        "required": ["p0"], "additionalProperties": False}} for i in range(24)]
    return system, tools


_CLAUDE_CODE = _claude_code_parts()


def session_name(target: str, stream: bool, concurrency: int, index: int, shape: str) -> str:
    """The session id (or client key) of one connection of a run.

    Only characters Lynkr accepts in `x-session-id`: with another one (the `+` of
    `lynkr+10000`) the gateway would ignore the id and put all of a run's connections
    in one inferred session, as the "after 10,000 sessions" cells did until 2026-12-06.
    """
    suffix = "" if shape == "small" else f"-{shape}"
    return UNSAFE_IN_SESSION_ID.sub("_", f"bench-{target}-{stream}-{concurrency}-{index}{suffix}")


async def run_load(port: int, target: str, stream: bool, concurrency: int, total: int,
                   gateway_pid: int | None, *, shape: str = "small",
                   session_ids: str = "header") -> Result:
    """`total` requests over `concurrency` keep-alive connections.

    `shape` "small" sends one short question every time; "claude-code" sends each
    connection's session its next Claude-Code-sized turn (`claude_code_body`).
    `session_ids` "header" names each connection's session in `x-session-id`; "none"
    sends no id, and a per-connection `x-api-key` instead.
    """
    result = Result(target, "stream" if stream else "json", concurrency)
    path, body = bodies(target, stream)
    remaining = [total]

    async def worker(index: int) -> None:
        conn = Connection(await trio.open_tcp_stream("127.0.0.1", port), f"127.0.0.1:{port}")
        name = session_name(target, stream, concurrency, index, shape)
        headers = [("x-session-id" if session_ids == "header" else "x-api-key", name)]
        turn = 0
        while remaining[0] > 0:
            remaining[0] -= 1
            if conn.closed:
                await conn.stream.aclose()
                conn = Connection(await trio.open_tcp_stream("127.0.0.1", port),
                                  f"127.0.0.1:{port}")
            if shape == "claude-code":
                path_, body_ = claude_code_body(target, stream, turn)
                turn += 1
            else:
                path_, body_ = path, body
            await conn.post(path_, body_, headers, result)
        await conn.stream.aclose()

    cpu_before = cpu_seconds(gateway_pid)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(concurrency):
            nursery.start_soon(worker, index)
    result.elapsed = time.perf_counter() - started
    if gateway_pid is not None:
        result.cpu_ms = (cpu_seconds(gateway_pid) - cpu_before) * 1000
    return result


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds of a process and every process under it (0 when there is no pid).

    utime + stime of the process and of its live descendants (the gateway's
    projection worker), plus cutime + cstime: what its reaped children used.
    """
    if pid is None:
        return 0.0
    stats: dict[int, tuple[int, list[str]]] = {}  # pid -> (parent pid, stat fields)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended meanwhile
            stats[int(entry.name)] = (int(fields[1]), fields)
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    ticks = sum(int(f) for f in stats[pid][1][11:15])
    below = list(children.get(pid, ()))
    while below:
        child = below.pop()
        fields = stats[child][1]
        ticks += int(fields[11]) + int(fields[12])
        below.extend(children.get(child, ()))
    return ticks / os.sysconf("SC_CLK_TCK")


def start(args: list[str], cwd: Path, env: dict[str, str], marker: str,
          use_stderr: bool) -> tuple[subprocess.Popen[str], int]:
    """Start a process and wait for the line that says its port.

    Its stdout and stderr go to files in `cwd` (`proc-*.out`, `proc-*.err`), as a
    deployed gateway's log goes to a file or to a collector in another process: a
    pipe read by this process would wake it on every log line, adding scheduling
    noise to the very latencies it measures.
    """
    fd, name = tempfile.mkstemp(dir=cwd, prefix="proc-", suffix=".out")
    os.close(fd)
    out_path, err_path = Path(name), Path(name).with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(args, cwd=cwd, env=env, text=True, stdout=out, stderr=err)
    watched = err_path if use_stderr else out_path
    deadline = time.monotonic() + 60
    with open(watched, encoding="utf-8", errors="replace") as log:
        pending = ""
        while time.monotonic() < deadline:
            pending += log.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                if line.startswith(marker):
                    return proc, int(line.split()[-1].rsplit(":", 1)[-1])
            if proc.poll() is not None:
                tail = err_path.read_text(errors="replace")[-2000:]
                raise SystemExit(f"{args} exited before listening: {proc.returncode}\n{tail}")
            time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise SystemExit(f"{args} did not say {marker!r} within 60 s")


NO_PROMPT_CACHE = {"PROMPT_CACHE_ENABLED": "false"}
"""The proxy benchmarks resend identical requests: with the prompt cache on they would time
its hits, not the proxy (tools/bench_cache.py measures the cache)."""


def start_pair(tmp: Path, gateway: list[str], repo: Path, extra_env: dict[str, str] | None = None
               ) -> tuple[subprocess.Popen[str], int, subprocess.Popen[str], int]:
    """Start the fake upstream, then `gateway` (a `lynkr serve` of `repo`) in front of it,
    with `extra_env` added to the gateway's environment.

    Returns:
        (upstream process, its port, gateway process, its port).
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(repo),
           "HOME": str(tmp)}
    fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                             "--port", "0", "--no-record", "--chunks", str(CHUNKS)],
                            tmp, env, "LISTENING", use_stderr=False)
    lynkr_env = {**env, "PORT": "0", "MODEL_PROVIDER": "openai", "LOG_LEVEL": "info",
                 "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
                 **NO_PROMPT_CACHE, **(extra_env or {})}
    try:
        lynkr, lynkr_port = start(gateway, tmp, lynkr_env, "lynkr: listening on ",
                                  use_stderr=True)
    except SystemExit:
        stop(fake)
        raise
    return fake, fake_port, lynkr, lynkr_port


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, and wait (SIGKILL after 15 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure(fake_port: int, lynkr_port: int, lynkr_pid: int,
                  requests: int, shape: str = "small", session_ids: str = "header",
                  filled: tuple[str, int, int] | None = None) -> list[Result]:
    """Every combination, baseline first, with a warm-up for each target; `filled` is
    (target name, port, pid) of a gateway measured right after the fresh one."""
    results = []
    targets: list[tuple[str, int, int | None]] = [
        ("direct", fake_port, None), ("lynkr", lynkr_port, lynkr_pid)]
    if filled is not None:
        targets.append(filled)
    for target, port, _ in targets:
        await run_load(port, target, False, 4, 100, None)  # warm-up
    for stream in (False, True):
        for concurrency in (1, 32):
            total = requests if concurrency == 1 else requests * 4
            for target, port, pid in targets:
                results.append(await run_load(port, target, stream, concurrency, total, pid,
                                              shape=shape, session_ids=session_ids))
    return results


async def fill_sessions(port: int, count: int, concurrency: int = 32) -> float:
    """Serve `count` one-turn sessions (distinct `x-session-id`s); returns the seconds."""
    result = Result("fill", "json", concurrency)
    next_index = [0]
    _, body = bodies("lynkr", False)

    async def worker() -> None:
        conn = Connection(await trio.open_tcp_stream("127.0.0.1", port), f"127.0.0.1:{port}")
        while next_index[0] < count:
            index, next_index[0] = next_index[0], next_index[0] + 1
            if conn.closed:
                await conn.stream.aclose()
                conn = Connection(await trio.open_tcp_stream("127.0.0.1", port),
                                  f"127.0.0.1:{port}")
            await conn.post("/v1/messages", body, [("x-session-id", f"fill-{index}")], result)
        await conn.stream.aclose()

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    if result.errors:
        raise SystemExit(f"filling the gateway: {result.errors} of {count} requests failed")
    return time.perf_counter() - started


def wait_quiet(pid: int, timeout: float = 600.0) -> float:
    """Wait until the gateway and its children use under 2 % of a CPU over a second (its
    projection worker has caught up); returns the seconds waited."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.02:
            break
        before = now
    return time.monotonic() - started


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def table(results: list[Result]) -> str:
    """A markdown table with the added latency next to each Lynkr row."""
    rows = ["| mode | conc. | target | p50 ms | p99 ms | added p50 ms | added p99 ms | "
            "first event p50 ms | req/s | gateway CPU ms/req | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    base: dict[tuple[str, int], dict[str, Any]] = {}
    for result in results:
        s = result.summary()
        key = (s["mode"], s["concurrency"])
        added = ("", "")
        if s["target"] == "direct":
            base[key] = s
        elif key in base:
            added = (f"{s['p50_ms'] - base[key]['p50_ms']:.2f}",
                     f"{s['p99_ms'] - base[key]['p99_ms']:.2f}")
        first = f"{s['first_event_p50_ms']:.2f}" if s["mode"] == "stream" else ""
        cpu = "" if s["cpu_ms_per_request"] is None else f"{s['cpu_ms_per_request']:.2f}"
        rows.append(f"| {s['mode']} | {s['concurrency']} | {s['target']} | {s['p50_ms']:.2f} | "
                    f"{s['p99_ms']:.2f} | {added[0]} | {added[1]} | {first} | {s['rps']:.0f} | "
                    f"{cpu} | {s['errors']} |")
    return "\n".join(rows)


def main_paced(args: argparse.Namespace, extra: dict[str, str]) -> int:
    """`--paced`: the fake upstream, Lynkr (and ccr with `--ccr`), N paced streams each."""
    import bench_paced as paced  # tools/ is on sys.path when run as a script

    with tempfile.TemporaryDirectory() as tmp:
        fake, fake_port, lynkr, lynkr_port = start_pair(
            Path(tmp), [sys.executable, "-m", "lynkr", "serve"], REPO, extra)
        ccr = None
        try:
            targets: list[tuple[str, int, int | None]] = [("direct", fake_port, None)]
            if args.ccr:
                ccr, ccr_port = paced.start_ccr(args.ccr.resolve(), Path(tmp), fake_port)
                targets.append(("ccr", ccr_port, ccr.pid))
            targets.append(("lynkr", lynkr_port, lynkr.pid))
            results = trio.run(paced.measure_paced, fake_port, targets, args.paced,
                               args.paced_timeout, args.paced_delay)
        finally:
            if ccr is not None:
                paced.stop_process(ccr)
            stop(lynkr)
            stop(fake)
    print(paced.paced_table(results))
    print(f"\n{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; gateway LOG_LEVEL=info; "
          "CPU and RSS include the gateway's child processes; direct = the fake upstream alone")
    if args.json:
        args.json.write_text(json.dumps([r.summary() for r in results], indent=2))
    return 0


def start_filled(tmp: Path, fake_port: int, extra: dict[str, str], count: int
                 ) -> tuple[subprocess.Popen[str], tuple[str, int, int], str]:
    """A second gateway (own data directory) in front of the same upstream, after it
    served `count` one-turn sessions: (process, (target, port, pid), a note)."""
    home = tmp / "filled"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "HOME": str(home), "PORT": "0", "MODEL_PROVIDER": "openai", "LOG_LEVEL": "info",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1", **NO_PROMPT_CACHE, **extra}
    proc, port = start([sys.executable, "-m", "lynkr", "serve"], home, env,
                       "lynkr: listening on ", use_stderr=True)
    try:
        seconds = trio.run(fill_sessions, port, count)
        settled = wait_quiet(proc.pid)
    except BaseException:
        stop(proc)
        raise
    note = (f"filled: {count} sessions in {seconds:.1f} s ({count / seconds:.0f} req/s), "
            f"quiet {settled:.1f} s later (projections caught up), "
            f"RSS {rss_mb(proc.pid):.0f} MB")
    return proc, (f"lynkr+{count}", port, proc.pid), note


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400,
                        help="requests per concurrency-1 run (4x that at concurrency 32)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--shape", choices=("small", "claude-code"), default="small",
                        help="small: one short question (the issue's benchmark); claude-code: "
                             "each session's next ~100-220 KB Claude-Code-shaped turn")
    parser.add_argument("--projector", choices=("process", "thread"),
                        help="the gateway's LYNKR_PROJECTOR (default: its own default, process)")
    parser.add_argument("--paced", type=lambda v: [int(n) for n in v.split(",")],
                        metavar="N[,N...]", help="instead: N concurrent paced streams "
                        "(50 chunks 20 ms apart, one session each; tools/bench_paced.py)")
    parser.add_argument("--paced-timeout", type=float, default=120.0,
                        help="seconds a paced stream may take before it counts as an error")
    parser.add_argument("--paced-delay", type=float, default=0.02,
                        help="seconds between the upstream's chunks (0: the same streams "
                        "in a burst, for comparison)")
    parser.add_argument("--ccr", type=Path, metavar="CLI_JS", help="with --paced: also "
                        "claude-code-router's dist/cli.js (an npm install), same upstream")
    parser.add_argument("--session-ids", choices=("header", "none"), default="header",
                        help="header: each connection's session in x-session-id; none: no "
                             "session id, a per-connection x-api-key (sessions inferred)")
    parser.add_argument("--sessions-before", type=int, default=0, metavar="N",
                        help="also measure a second gateway that first served N sessions")
    args = parser.parse_args(argv)
    extra = {"LYNKR_PROJECTOR": args.projector} if args.projector else {}
    if args.paced:
        return main_paced(args, extra)
    extra["LOOP_GUARD_REPEATS"] = "off"  # see the module docstring
    with tempfile.TemporaryDirectory() as tmp:
        fake, fake_port, lynkr, lynkr_port = start_pair(
            Path(tmp), [sys.executable, "-m", "lynkr", "serve"], REPO, extra)
        filled, filled_proc = None, None
        try:
            if args.sessions_before:
                filled_proc, filled, fill_note = start_filled(Path(tmp), fake_port, extra,
                                                              args.sessions_before)
                print(fill_note, flush=True)
            results = trio.run(measure, fake_port, lynkr_port, lynkr.pid, args.requests,
                               args.shape, args.session_ids, filled)
            rss = [f"{name} {rss_mb(pid):.0f} MB" for name, pid in
                   [("lynkr", lynkr.pid), *([(filled[0], filled[2])] if filled else [])]]
        finally:
            if filled_proc is not None:
                stop(filled_proc)
            stop(lynkr)
            stop(fake)
    print(table(results))
    print(f"\ngateway RSS after the runs: {', '.join(rss)}; session ids: {args.session_ids}")
    print(f"\n{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; gateway LOG_LEVEL=info "
          "(one JSON log line per request, written to a file); "
          f"LYNKR_PROJECTOR={args.projector or 'process'}; gateway CPU includes its child "
          "processes")
    if args.json:
        args.json.write_text(json.dumps([r.summary() for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
