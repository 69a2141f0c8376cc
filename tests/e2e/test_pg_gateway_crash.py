"""Acknowledged means durable on PostgreSQL too: `kill -9` of a `lynkr serve` gateway
under load loses no turn a client saw complete, and the log still verifies.

The PostgreSQL counterpart of tests/e2e/test_durability.py: one gateway on a fresh
database (tests.eventstore.postgres), several client threads each driving its own
session (every third turn streamed), SIGKILL at a random moment, then the gateway is
restarted on the same database and data directory.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventstore import open_recorder, verify_log
from eventstore.events.session import ModelResponded
from tests.e2e.processes import REPO, provider_env, start, stop
from tests.eventstore.postgres import temporary_database

pytestmark = pytest.mark.slow

CLIENTS = 4


@contextmanager
def pg_gateway(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fake upstream and the environment of one gateway on a fresh PostgreSQL database;
    `serve()` starts (or restarts) `lynkr serve` in the same data directory."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO)}
    with temporary_database() as db, ExitStack() as stack:
        fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                                 "--port", "0"], tmp_path, base, "LISTENING", "stdout")
        stack.callback(stop, fake)
        env = {**base, "PORT": "0", "LOG_LEVEL": "warning", "PROMPT_CACHE_ENABLED": "false",
               "LYNKR_STORE_URL": db, **provider_env("openai", int(fake_port))}
        cwd = tmp_path / "gateway"
        cwd.mkdir()
        procs: list[subprocess.Popen[str]] = []

        def serve() -> tuple[subprocess.Popen[str], str]:
            proc, url = start([sys.executable, "-m", "lynkr", "serve"], cwd, env,
                              "lynkr: listening on ", "stderr")
            procs.append(proc)
            return proc, url

        try:
            yield {"db": db, "env": env, "cwd": cwd, "serve": serve}
        finally:
            for proc in procs:
                stop(proc, signal.SIGTERM if proc.poll() is None else signal.SIGCONT)


def _turn(url: str, session: str, history: list[dict[str, Any]], n: int,
          stream: bool) -> str | None:
    """One turn (the whole history plus a new question); its answer text if the client
    saw it complete (a JSON 200 body, or a stream that reached `message_stop`)."""
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": stream,
            "messages": [*history, {"role": "user", "content": f"question {n}"}]}
    headers = {"x-claude-code-session-id": session}
    try:
        if stream:
            with httpx.stream("POST", url + "/v1/messages", json=body, headers=headers,
                              timeout=30) as response:
                return _streamed_text(response)
        response = httpx.post(url + "/v1/messages", json=body, headers=headers, timeout=30)
        if response.status_code != 200:
            return None
        return str(response.json()["content"][0]["text"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None  # cut off by the kill: not acknowledged


def _streamed_text(response: httpx.Response) -> str | None:
    """The text of a 200 stream that reached `message_stop`, else None."""
    if response.status_code != 200:
        return None
    text = ""
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        data = json.loads(line[6:])
        if data["type"] == "content_block_delta":
            text += data["delta"]["text"]
        elif data["type"] == "message_stop":
            return text
    return None


def _client(url: str, session: str, halt: threading.Event, acked: list[int]) -> None:
    """Send turns on `session` until `halt` or a turn fails; append each acknowledged
    turn's number (1-based, as the gateway numbers them) to `acked`."""
    history: list[dict[str, Any]] = []
    n = 0
    while not halt.is_set():
        text = _turn(url, session, history, n, stream=n % 3 == 0)
        if text is None:
            return
        n += 1
        acked.append(n)
        history += [{"role": "user", "content": f"question {n - 1}"},
                    {"role": "assistant", "content": text}]


def test_acknowledged_turns_survive_kill_9_of_a_gateway_under_load(tmp_path: Path) -> None:
    """Every turn a client saw complete before SIGKILL has its `ModelResponded` in the
    PostgreSQL log; the restarted gateway answers, and `lynkr verify` passes."""
    with pg_gateway(tmp_path) as gw:
        proc, url = gw["serve"]()
        halt = threading.Event()
        acked: dict[str, list[int]] = {f"crash-{i}": [] for i in range(CLIENTS)}
        threads = [threading.Thread(target=_client, args=(url, session, halt, turns))
                   for session, turns in acked.items()]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while sum(map(len, acked.values())) < 2 * CLIENTS and time.monotonic() < deadline:
            time.sleep(0.05)  # under load: every client is past its first turns
        time.sleep(random.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(15)
        halt.set()
        for thread in threads:
            thread.join(40)
        assert not any(thread.is_alive() for thread in threads)
        acknowledged = {session: list(turns) for session, turns in acked.items()}
        assert sum(map(len, acknowledged.values())) >= 2 * CLIENTS, acknowledged

        _, url = gw["serve"]()
        after = _turn(url, "after-restart", [], 0, stream=True)
        assert after is not None
        assert after.endswith("question 0")
        recorder = open_recorder(gw["db"])
        try:
            answered = {session: [r.event.turn for r in recorder.read_stream(f"session-{session}")
                                  if isinstance(r.event, ModelResponded)]
                        for session in acknowledged}
            assert all(damage is None for _, _, damage in verify_log(recorder))
        finally:
            recorder.close()
        verified = subprocess.run([sys.executable, "-m", "lynkr", "verify"], cwd=gw["cwd"],
                                  env=gw["env"], capture_output=True, text=True, timeout=120,
                                  check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    for session, turns in acknowledged.items():
        assert set(turns) <= set(answered[session]), (session, turns, answered[session])
        assert len(answered[session]) == len(set(answered[session])), (session, answered)
