"""Two `lynkr serve` processes on one PostgreSQL database: a session alternating between
them, usage counted once, limits shared, readiness and a graceful shutdown.

Each test creates and drops its own database (tests.eventstore.postgres); the gateways
are real processes in front of the fake upstream process, each with its own data
directory (gateway lock) and `LYNKR_STORE_URL` / `LYNKR_LIMITS_STORE`
pointing at the shared database.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from eventstore import open_recorder, verify_log
from eventstore.events.session import ModelResponded, TurnStarted
from tests.e2e.processes import REPO, provider_env, start, stop
from tests.eventstore.postgres import ADMIN_URL, temporary_database


@contextmanager
def two_gateways(tmp_path: Path, **extra: str) -> Iterator[dict[str, Any]]:
    """A fake upstream and two gateways on one fresh PostgreSQL database."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO)}
    with temporary_database() as db, ExitStack() as stack:
        fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                                 "--port", "0"], tmp_path, base, "LISTENING", "stdout")
        stack.callback(stop, fake)
        env = {**base, "PORT": "0", "LOG_LEVEL": "info", "LOG_FORMAT": "json",
               "PROMPT_CACHE_ENABLED": "false", "LYNKR_STORE_URL": db,
               "LYNKR_LIMITS_STORE": "postgresql", **provider_env("openai", int(fake_port)),
               **extra}
        procs, urls = [], []
        for name in ("a", "b"):
            cwd = tmp_path / name
            cwd.mkdir()
            proc, url = start([sys.executable, "-m", "lynkr", "serve"], cwd, env,
                              "lynkr: listening on ", "stderr")
            stack.callback(_stop_if_running, proc)
            procs.append(proc)
            urls.append(url)
        yield {"db": db, "urls": urls, "procs": procs, "env": env,
               "fake": f"http://127.0.0.1:{fake_port}", "tmp": tmp_path}


def _stop_if_running(proc: subprocess.Popen[str]) -> None:
    stop(proc, signal.SIGTERM if proc.poll() is None else signal.SIGCONT)


def _turn(url: str, session: str, history: list[dict[str, Any]], n: int,
          stream: bool) -> tuple[str, dict[str, int]]:
    """One Claude Code-like turn: the whole history plus a new question; its answer."""
    messages = [*history, {"role": "user", "content": f"question {n}"}]
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": messages,
            "stream": stream}
    response = httpx.post(url + "/v1/messages", json=body, timeout=30,
                          headers={"x-claude-code-session-id": session})
    assert response.status_code == 200, response.text
    if not stream:
        answer = response.json()
        return answer["content"][0]["text"], answer["usage"]
    text, usage = "", {}
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = json.loads(line[6:])
            if data["type"] == "content_block_delta":
                text += data["delta"]["text"]
            elif data["type"] == "message_delta":
                usage = data["usage"]
            elif data["type"] == "message_start":
                usage = data["message"]["usage"]
    assert "event: message_stop" in response.text
    return text, usage


def _lynkr(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lynkr", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_session_alternating_between_gateways_keeps_one_stream(tmp_path: Path) -> None:
    """12 turns alternating between two gateways: each turn once in order, every
    acknowledged turn durable, no conflict to retry (each gateway catches up on the
    session before a turn begins), `lynkr verify` passes,
    and `lynkr usage` (from either gateway's data or a fresh one) counts each turn once,
    from the one set of projections kept in the shared database."""
    with two_gateways(tmp_path) as gw:
        history: list[dict[str, Any]] = []
        output_tokens = 0
        for n in range(12):
            text, usage = _turn(gw["urls"][n % 2], "alternating", history, n, stream=n % 3 == 0)
            assert text.endswith(f"question {n}")
            history += [{"role": "user", "content": f"question {n}"},
                        {"role": "assistant", "content": text}]
            output_tokens += usage["output_tokens"]
        healths = [httpx.get(url + "/health").json() for url in gw["urls"]]
        retried = sum(h["sessions"]["conflicts_retried"] for h in healths)
        recorder = open_recorder(gw["db"])
        try:
            events = [r.event for r in recorder.read_stream("session-alternating")]
            assert all(damage is None for _, _, damage in verify_log(recorder))
        finally:
            recorder.close()
        verified = _lynkr(gw["env"], tmp_path / "a", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        usage_rows = {}
        for where in ("a", "b", "fresh"):
            (tmp_path / where / "data").mkdir(parents=True, exist_ok=True)
            report = _lynkr(gw["env"], tmp_path / where, "usage", "--json")
            assert report.returncode == 0, report.stderr
            usage_rows[where] = json.loads(report.stdout)
        with psycopg.connect(gw["db"]) as conn:  # the projections live in the log's database
            shared = conn.execute("SELECT sum(requests) FROM public_projections.usage_daily"
                                  ).fetchone()
    assert shared == (12,)
    assert not list(tmp_path.glob("*/data/projections.db"))
    started = [e.turn for e in events if isinstance(e, TurnStarted)]
    answered = [e.turn for e in events if isinstance(e, ModelResponded)]
    assert started == answered == list(range(1, 13))
    assert retried == 0  # goal: retried conflicts <= 1 % of turns under alternating routing
    for where, rows in usage_rows.items():
        assert sum(int(row["requests"]) for row in rows) == 12, (where, rows)
        assert sum(int(row["output_tokens"]) for row in rows) == output_tokens, (where, rows)


def test_free_key_eleventh_request_refused_by_either_gateway_process(tmp_path: Path) -> None:
    """A free key minted in the shared log: 10 requests alternating between the two
    processes are answered, the 11th is 429 on both."""
    with two_gateways(tmp_path, LYNKR_AUTH="keys") as gw:
        made = _lynkr(gw["env"], tmp_path / "a", "keys", "create", "--user", "ann",
                      "--tier", "free", "--name", "laptop", "--json")
        assert made.returncode == 0, made.stderr
        secret = json.loads(made.stdout)["key"]
        def body(n: int) -> dict[str, Any]:
            return {"model": "claude-sonnet-4-6", "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"hi {n}"}]}

        for n in range(10):
            ok = httpx.post(gw["urls"][n % 2] + "/v1/messages", json=body(n), timeout=30,
                            headers={"x-api-key": secret})
            assert ok.status_code == 200, ok.text
        for url in gw["urls"]:
            refused = httpx.post(url + "/v1/messages", json=body(99), timeout=30,
                                 headers={"x-api-key": secret})
            assert refused.status_code == 429, refused.text


def test_ready_is_false_while_the_store_is_unreachable(tmp_path: Path) -> None:
    """`/health/ready` 503 naming the event store (and the limits store) while the
    database refuses connections; 200 again once it accepts them."""
    with two_gateways(tmp_path) as gw:
        url = gw["urls"][0]
        assert httpx.get(url + "/health/ready").json() == {"ready": True}
        name = gw["db"].rsplit("/", 1)[1]
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false".encode())
            admin.execute(b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          b"WHERE datname = %s", (name,))
        try:
            down = httpx.get(url + "/health/ready", timeout=30)
            assert down.status_code == 503
            assert down.json()["reasons"] == ["event store unreachable",
                                              "limits store unreachable"]
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true".encode())
        back = httpx.get(url + "/health/ready", timeout=30)
        assert back.status_code == 200, back.text


def test_sigterm_finishes_the_stream_under_way(tmp_path: Path) -> None:
    """SIGTERM while a slow stream is relayed: the client still gets `message_stop`
    and the turn is in the log; the port then refuses connections; exit code 0."""
    with two_gateways(tmp_path, LYNKR_SHUTDOWN_GRACE_S="20") as gw:
        script = {"responses": [{"text": "a slow answer in ten pieces", "chunks": 10,
                                 "chunk_delay": 0.3}]}
        assert httpx.post(gw["fake"] + "/_script", json=script).status_code < 300
        url, proc = gw["urls"][0], gw["procs"][0]
        body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": True,
                "messages": [{"role": "user", "content": "take your time"}]}
        seen: list[str] = []
        first = threading.Event()

        def read_stream() -> None:
            with httpx.stream("POST", url + "/v1/messages", json=body, timeout=30,
                              headers={"x-claude-code-session-id": "draining"}) as response:
                for line in response.iter_lines():
                    seen.append(line)
                    first.set()

        reader = threading.Thread(target=read_stream)
        reader.start()
        assert first.wait(15)
        proc.send_signal(signal.SIGTERM)
        reader.join(30)
        assert proc.wait(30) == 0
        assert "event: message_stop" in seen
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health", timeout=5)
        recorder = open_recorder(gw["db"])
        try:
            events = [r.event for r in recorder.read_stream("session-draining")]
        finally:
            recorder.close()
        assert [type(e) for e in events if isinstance(e, ModelResponded)] == [ModelResponded]


def test_compose_file_runs_two_gateways_on_documented_settings() -> None:
    """compose.yaml: PostgreSQL and two gateways sharing the store and the limits, each
    with its own data volume; every variable it sets is a README setting."""
    text = (REPO / "compose.yaml").read_text()
    readme = (REPO / "README.md").read_text()
    names = set(re.findall(r"^ {4}([A-Z][A-Z0-9_]+):", text, re.MULTILINE))
    gateway_names = names - {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    assert {"LYNKR_STORE_URL", "LYNKR_LIMITS_STORE", "LYNKR_SHUTDOWN_GRACE_S"} <= gateway_names
    assert [n for n in sorted(gateway_names) if f"`{n}`" not in readme] == []
    assert re.findall(r"^  (gateway-[ab]|postgres):$", text, re.MULTILINE) == [
        "postgres", "gateway-a", "gateway-b"]
    assert "gateway-a-data:/data" in text
    assert "gateway-b-data:/data" in text
    assert "/health/ready" in text
