"""Many users at once: N concurrent paced streams through a gateway (`bench_proxy.py --paced`).

    .venv/bin/python tools/bench_proxy.py --paced 200,1000 [--ccr PATH/TO/ccr/dist/cli.js]

Each of N clients opens its own connection at the same moment and sends one streaming
turn of its own session; the fake upstream answers every turn with 50 text chunks
20 ms apart (its `chunk_delay` step key, set through `POST /_script`), as a model
trickles tokens. Reported per run: errors (a status other than 200, a reset, no
`message_stop` / `[DONE]` at the end, or no answer within `--paced-timeout`), the time
to the first SSE event (p50/p99) and to the end of the stream, the gateway's CPU per
stream (utime + stime of its process and the processes under it) and its peak RSS
(process and children, sampled every 0.25 s).

The targets, one at a time: the fake upstream alone (`direct`: what the load
generator and upstream cost on this machine), Lynkr (`lynkr serve` on its defaults),
and, with `--ccr`, claude-code-router (`ccr start`, from an npm install, with a
temporary HOME whose config routes every request to the same fake upstream).
The client reads raw bytes after the response head (no h11 per chunk), and asks for
`Connection: close`, so 1,000 clients cost the load generator little CPU.
Everything binds 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as tools/bench_proxy.py (tools/ is on sys.path)
    from bench_proxy import cpu_seconds  # type: ignore[import-not-found,no-redef]
else:
    from tools.bench_proxy import cpu_seconds

PACED_CHUNKS = 50
PACED_DELAY = 0.02  # seconds between the upstream's chunks
_END = {"direct": b"[DONE]", "lynkr": b"message_stop", "ccr": b"message_stop"}


@dataclass
class PacedResult:
    """One run of `streams` concurrent paced streams against one target."""

    target: str
    streams: int
    first_event: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    cpu_ms: float | None = None
    rss_mb: float | None = None
    elapsed: float = 0.0

    def fail(self, kind: str) -> None:
        """Count one failed stream."""
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers."""
        done = len(self.total)
        return {"target": self.target, "streams": self.streams, "completed": done,
                "errors": self.errors, "error_kinds": self.error_kinds,
                "first_event_p50_ms": round(_pct(self.first_event, 0.5), 1),
                "first_event_p99_ms": round(_pct(self.first_event, 0.99), 1),
                "stream_p50_ms": round(_pct(self.total, 0.5), 1),
                "stream_p99_ms": round(_pct(self.total, 0.99), 1),
                "cpu_ms_per_stream": (None if self.cpu_ms is None or not done
                                      else round(self.cpu_ms / done, 2)),
                "peak_rss_mb": None if self.rss_mb is None else round(self.rss_mb, 1),
                "elapsed_s": round(self.elapsed, 2)}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def request_bytes(target: str, port: int, session: str) -> bytes:
    """One streaming turn as raw HTTP/1.1 bytes (`Connection: close`)."""
    messages = [{"role": "user", "content": "benchmark request: say something short"}]
    if target == "direct":
        path = "/v1/chat/completions"
        body: dict[str, Any] = {"model": "fake", "messages": messages, "max_tokens": 256,
                                "stream": True, "stream_options": {"include_usage": True}}
    else:
        path = "/v1/messages"
        body = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": messages,
                "stream": True}
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
            f"x-api-key: bench\r\nanthropic-version: 2023-06-01\r\n"
            f"x-session-id: {session}\r\nconnection: close\r\n\r\n")
    return head.encode() + data


async def stream_once(port: int, target: str, session: str, result: PacedResult,
                      limit: float) -> None:
    """One paced stream: connect, send, time the first body bytes, read to the end."""
    started = time.perf_counter()
    first: float | None = None
    tail = b""
    head_done = False
    status = b""
    with trio.move_on_after(limit) as scope:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            result.fail("connect")
            return
        async with stream:
            try:
                await stream.send_all(request_bytes(target, port, session))
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    if not head_done:
                        tail += data
                        end = tail.find(b"\r\n\r\n")
                        if end < 0:
                            continue
                        head_done, status = True, tail[9:12]
                        data, tail = tail[end + 4:], b""
                        if not data:
                            continue
                    if first is None:
                        first = time.perf_counter() - started
                    tail = (tail + data)[-256:]
                    if tail.endswith(b"\r\n0\r\n\r\n"):  # the last chunk: do not wait for
                        break  # the server to close (hypercorn keeps the socket open)
            except (OSError, trio.BrokenResourceError):
                result.fail("reset")
                return
    if scope.cancelled_caught:
        result.fail("timeout")
    elif status != b"200":
        result.fail(f"status {status.decode(errors='replace') or 'none'}")
    elif _END[target] not in tail:
        result.fail("truncated")
    else:
        result.total.append(time.perf_counter() - started)
        if first is not None:
            result.first_event.append(first)


async def run_paced(port: int, target: str, streams: int, pid: int | None, *,
                    limit: float = 120.0, label: str = "") -> PacedResult:
    """`streams` concurrent paced streams against `port`, all started at once."""
    result = PacedResult(label or target, streams)
    peak = [0.0]

    async def sample_rss() -> None:
        while True:
            peak[0] = max(peak[0], rss_mb(pid))
            await trio.sleep(0.25)

    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    started = time.perf_counter()
    async with trio.open_nursery() as outer:
        if pid is not None:
            outer.start_soon(sample_rss)
        async with trio.open_nursery() as nursery:
            for index in range(streams):
                nursery.start_soon(stream_once, port, target,
                                   f"paced-{target}-{streams}-{index}-{time.time_ns()}",
                                   result, limit)
        outer.cancel_scope.cancel()
    result.elapsed = time.perf_counter() - started
    if pid is not None:
        result.cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000
        result.rss_mb = max(peak[0], rss_mb(pid))
    return result


def rss_mb(pid: int | None) -> float:
    """Resident memory of `pid` and the processes under it, in MB (0 without a pid)."""
    if pid is None:
        return 0.0
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    family, todo = [], [pid]
    while todo:
        current = todo.pop()
        family.append(current)
        todo.extend(child for child, parent in parents.items() if parent == current)
    total = 0
    for member in family:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def set_paced_script(fake_port: int, turns: int, delay: float = PACED_DELAY) -> None:
    """Make the fake upstream answer the next `turns` requests with paced streams
    (`delay` seconds between chunks; 0: the same stream in a burst)."""
    script = json.dumps({"responses": [{"chunks": PACED_CHUNKS, "chunk_delay": delay,
                                        "text": "token " * PACED_CHUNKS,  # >= 50 pieces
                                        "times": turns}]}).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", fake_port)
    async with stream:
        await stream.send_all(
            f"POST /_script HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(script)}\r\nconnection: close\r\n\r\n".encode() + script)
        while await stream.receive_some(65536):
            pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_ccr(cli_js: Path, home: Path, fake_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """Start claude-code-router (`node cli.js start`, in the foreground) in front of the
    fake upstream, with its config in `home`; wait until its port answers.

    Raises:
        SystemExit: it exited or did not listen within 60 s.
    """
    port = free_port()
    config = home / ".claude-code-router"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.json").write_text(json.dumps({
        "PORT": port, "HOST": "127.0.0.1", "LOG": False, "LOG_LEVEL": "error",
        "API_TIMEOUT_MS": 600000,
        "Providers": [{"name": "fake", "api_key": "x", "models": ["fake"],
                       "api_base_url": f"http://127.0.0.1:{fake_port}/v1/chat/completions"}],
        "Router": {"default": "fake,fake"}}))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    with open(home / "ccr.out", "wb") as out:
        proc = subprocess.Popen(["node", str(cli_js), "start"], cwd=home, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"ccr exited: {proc.returncode}\n"
                             f"{(home / 'ccr.out').read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
        else:
            return proc, port
    proc.kill()
    proc.wait()
    raise SystemExit("ccr did not listen within 60 s")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, and wait (SIGKILL after 15 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure_paced(fake_port: int, targets: list[tuple[str, int, int | None]],
                        counts: list[int], limit: float, delay: float = PACED_DELAY,
                        ) -> list[PacedResult]:
    """For each count, each target in turn (after a small warm-up of each)."""
    results = []
    for name, port, _ in targets:
        await set_paced_script(fake_port, 16, delay)
        await run_paced(port, _kind(name), 16, None, limit=limit)
    for count in counts:
        for name, port, pid in targets:
            await trio.sleep(2)  # let the previous run's connections close
            await set_paced_script(fake_port, count, delay)
            results.append(await run_paced(port, _kind(name), count, pid, limit=limit,
                                           label=name))
    return results


def _kind(name: str) -> str:
    return name.split("-", 1)[0]


def paced_table(results: list[PacedResult]) -> str:
    """A markdown table, one row per run."""
    rows = ["| streams | target | errors | first event p50 ms | p99 ms | stream p50 ms | "
            "p99 ms | CPU ms/stream | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        s = result.summary()
        errors = str(s["errors"]) + (f" ({s['error_kinds']})" if s["errors"] else "")
        cpu = "" if s["cpu_ms_per_stream"] is None else f"{s['cpu_ms_per_stream']:.2f}"
        rss = "" if s["peak_rss_mb"] is None else f"{s['peak_rss_mb']:.0f}"
        rows.append(f"| {s['streams']} | {s['target']} | {errors} | "
                    f"{s['first_event_p50_ms']:.0f} | {s['first_event_p99_ms']:.0f} | "
                    f"{s['stream_p50_ms']:.0f} | {s['stream_p99_ms']:.0f} | {cpu} | {rss} |")
    return "\n".join(rows)
