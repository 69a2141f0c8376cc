"""The callback tunnel's own cost: a no-op call's round trip, and many connectors' memory.

    .venv/bin/python tools/bench_tunnel.py [--calls 500] [--connectors 200] [--json F]

The gateway (`open_system` + `serve_gateway`, `LYNKR_AUTH=keys`, keys minted in its log
before it starts) runs in this process; the connectors run in a child process (this
script with `--serve-connectors`), each a minimal connector speaking
`lynkr/tunnel/_protocol.py` (trio-websocket, or httpx polling) that registers
`local_noop` and answers every call at once. Figures:

- **round trip p50/p90 (ws, poll)**: `Tunnel.request` of `local_noop` — queued, sent to
  the connector, answered, resolved — timed in the gateway, `--calls` times after a
  warm-up, one at a time. The model, the policy decision and the session's events are
  not in it (the agent loop adds them to any server tool). Goals: ≤ 2 ms over the
  WebSocket, ≤ 30 ms by polling.
- **RSS growth for N connectors**: this process's resident memory (the gateway's, not the
  projector child's) before `--connectors` WebSockets are opened, one user each, and
  once all are attached (and each has answered one call). With `--real` each is a
  `lynkr connect --transport ws` process (answering `local_list_dir`); otherwise one
  child process holds them all. Goal ≤ 100 MB for 200.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REAL_BATCH = 20  # `lynkr connect` processes started at a time with --real
TOOL = {"name": "local_noop", "description": "no-op", "input_schema": {"type": "object"},
        "read_only": True}


def rss_mb() -> float:
    """This process's resident set size, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def mint_keys(data_dir: Path, users: list[str]) -> list[str]:
    """One `mcp-callback` key per user, stored before the gateway starts."""
    from eventstore import SqliteRecorder
    from lynkr.gateway import KeyRing, create_key
    from lynkr.gateway._keys import GATEWAY_STREAM

    data_dir.mkdir(parents=True, exist_ok=True)
    recorder = SqliteRecorder(data_dir / "lynkr.db")
    ring, secrets, events = KeyRing(), [], []
    try:
        for user in users:
            event, secret = create_key(ring, name=user, user=user, tier="enterprise",
                                       scopes="mcp-callback", expires_in=None,
                                       now=time.time(), by="bench")
            ring.apply(event, ring.version + 1)
            secrets.append(secret)
            events.append(event)
        recorder.append(GATEWAY_STREAM, 0, events)
    finally:
        recorder.close()
    return secrets


# --- the connector side (child process) ----------------------------------------------


async def _ws_connector(url: str, user: str, secret: str, ready: trio.Semaphore) -> None:
    from trio_websocket import open_websocket_url

    ws_url = url.replace("http://", "ws://") + f"/api/mcp/ws/{user}"
    async with open_websocket_url(ws_url, extra_headers=[(b"x-api-key", secret.encode())]) as ws:
        await ws.send_message(json.dumps({"type": "register", "connector_id": f"c-{user}",
                                          "tools": [TOOL]}))
        json.loads(await ws.get_message())  # registered
        ready.release()
        while True:
            message = json.loads(await ws.get_message())
            if message["type"] == "call":
                await ws.send_message(json.dumps({"type": "result",
                                                  "call_id": message["call_id"], "ok": True,
                                                  "content": None, "rule": None}))
            elif message["type"] == "ping":
                await ws.send_message(json.dumps({"type": "pong", "ts": message["ts"]}))


async def _poll_connector(url: str, user: str, secret: str, ready: trio.Semaphore) -> None:
    import httpx

    connector_id = f"p-{user}"
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": secret},
                                 timeout=60) as client:
        register = {"type": "register", "connector_id": connector_id, "tools": [TOOL]}
        (await client.post("/api/mcp/register", json=register)).raise_for_status()
        ready.release()
        while True:
            answer = await client.post("/api/mcp/poll", json={"connector_id": connector_id})
            calls = answer.json()["calls"]
            if calls:
                results = [{"type": "result", "call_id": c["call_id"], "ok": True,
                            "content": None, "rule": None} for c in calls]
                await client.post("/api/mcp/submit", json={"results": results})


async def serve_connectors(url: str, transport: str, pairs: list[tuple[str, str]]) -> None:
    """Run one connector per (user, key) until killed; print "ready" once all registered."""
    ready = trio.Semaphore(0)
    serve = _ws_connector if transport == "ws" else _poll_connector
    async with trio.open_nursery() as nursery:
        for user, secret in pairs:
            nursery.start_soon(serve, url, user, secret, ready)
        for _ in pairs:
            await ready.acquire()
        print("ready", flush=True)


# --- the gateway side (this process) --------------------------------------------------


def _spawn(url: str, transport: str, pairs: list[tuple[str, str]]) -> subprocess.Popen[str]:
    spec = json.dumps({"url": url, "transport": transport, "pairs": pairs})
    return subprocess.Popen([sys.executable, __file__, "--serve-connectors", spec],
                            stdout=subprocess.PIPE, text=True)


def _spawn_real(url: str, pairs: list[tuple[str, str]], allowed: str
                ) -> list[subprocess.Popen[bytes]]:
    """One `lynkr connect --transport ws` process per (user, key); each one's log is
    `<allowed>/<user>.log`."""
    children = []
    for user, secret in pairs:
        with open(Path(allowed) / f"{user}.log", "wb") as log:
            children.append(subprocess.Popen(
                [sys.executable, "-m", "lynkr", "connect", "--url", url, "--user-id", user,
                 "--allowed-paths", allowed, "--transport", "ws"],
                env={**os.environ, "LYNKR_CONNECT_API_KEY": secret},
                stdout=subprocess.DEVNULL, stderr=log))
    return children


def _stop(children: list[subprocess.Popen[Any]]) -> None:
    for child in children:
        child.kill()
    for child in children:
        child.wait()


async def _until_attached(system: Any, count: int, limit: float = 120) -> None:
    """Wait until `count` connectors are attached (TooSlowError after `limit` s)."""
    with trio.fail_after(limit):
        # the tunnel offers nothing to wait on, so poll
        while system.tunnel.statistics().connectors < count:  # noqa: ASYNC110
            await trio.sleep(0.05)


async def _round_trips(system: Any, user: str, calls: int) -> list[float]:
    for _ in range(max(20, calls // 10)):  # warm-up
        await system.tunnel.request(user, "local_noop", {})
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await system.tunnel.request(user, "local_noop", {})
        times.append((time.perf_counter() - started) * 1000)
        assert result.ok
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def run(calls: int, connectors: int, real: bool) -> dict[str, Any]:
    """Every figure (module docstring)."""
    from lynkr.config import load_settings
    from lynkr.http import bind_listener, create_app, serve_gateway
    from lynkr.logs import configure_logging
    from lynkr.system import open_system

    configure_logging("warning", log_format="json")
    users = ["rt-user", *[f"user-{i}" for i in range(connectors)]]
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        secrets = mint_keys(data, users)
        settings = load_settings({"LYNKR_DATA_DIR": str(data), "LYNKR_AUTH": "keys",
                                  "LYNKR_SERVER_TOOLS": "local", "LOG_LEVEL": "warning"},
                                 cwd=tmp)
        async with trio.open_nursery() as nursery, open_system(settings) as system:
            [url] = await nursery.start(serve_gateway, create_app(system),
                                        bind_listener("127.0.0.1", 0))
            for transport in ("ws", "poll"):
                child = _spawn(url, transport, [(users[0], secrets[0])])
                try:
                    await _until_attached(system, 1)
                    times = await _round_trips(system, users[0], calls)
                finally:
                    child.kill()
                    child.wait()
                for connector_id in ("c-rt-user", "p-rt-user"):  # a poller is reaped late
                    gone = system.tunnel.connector(users[0], connector_id)
                    if gone is not None:
                        await system.tunnel.detach(gone, "bench")
                figures[f"{transport}_p50_ms"] = _quantile(times, 0.5)
                figures[f"{transport}_p90_ms"] = _quantile(times, 0.9)
            before = rss_mb()
            already = system.tunnel.statistics().connectors
            pairs = list(zip(users[1:], secrets[1:], strict=True))
            children: list[subprocess.Popen[Any]] = []
            tool = "local_list_dir" if real else "local_noop"
            try:
                if real:  # in batches: 200 interpreters starting at once on 2 vCPUs
                    for start in range(0, len(pairs), REAL_BATCH):
                        children += _spawn_real(url, pairs[start:start + REAL_BATCH], tmp)
                        await _until_attached(system, already + len(children), 300)
                else:
                    children.append(_spawn(url, "ws", pairs))
                await _until_attached(system, already + connectors)
                async with trio.open_nursery() as calls_nursery:
                    for user in users[1:]:
                        calls_nursery.start_soon(system.tunnel.request, user, tool,
                                                 {"path": tmp} if real else {})
                figures["connectors"] = system.tunnel.statistics().connectors - already
                figures["connector"] = "lynkr connect" if real else "fake"
                figures["rss_growth_mb"] = round(rss_mb() - before, 1)
            finally:
                _stop(children)
            nursery.cancel_scope.cancel()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--connectors", type=int, default=200)
    parser.add_argument("--real", action="store_true",
                        help="the N connectors are `lynkr connect` processes (else one "
                             "child process holds N minimal connectors)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve-connectors", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_connectors:
        spec = json.loads(args.serve_connectors)
        trio.run(serve_connectors, spec["url"], spec["transport"],
                 [tuple(pair) for pair in spec["pairs"]])
        return 0
    os.environ.setdefault("PYTHONHASHSEED", "0")
    figures = trio.run(run, args.calls, args.connectors, args.real)
    print(f"round trip of a no-op call over the WebSocket: p50 {figures['ws_p50_ms']} ms, "
          f"p90 {figures['ws_p90_ms']} ms (goal p50 <= 2 ms)")
    print(f"round trip by polling: p50 {figures['poll_p50_ms']} ms, "
          f"p90 {figures['poll_p90_ms']} ms (goal p50 <= 30 ms)")
    print(f"{figures['connectors']} connectors ({figures['connector']}) attached: gateway RSS "
          f"+{figures['rss_growth_mb']} MB (goal <= 100 MB)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
