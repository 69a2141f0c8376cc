"""kill -9 of `lynkr serve` while a server tool runs: recovery marks the call interrupted.

A real gateway runs the agent loop (`LYNKR_SERVER_TOOLS=tests`) against the scripted
fake upstream, whose first answer asks for `workspace_test_run`; the test command
sleeps. Once the call has started, the gateway is killed with SIGKILL and started again
on the same data directory: the log must verify, the call must have
`ToolCallInterrupted(gateway_restarted)`, its turn `StreamAborted(gateway_restarted)`,
and the call must not have been started a second time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from eventstore import SqliteRecorder
from eventstore.events.session import StreamAborted, ToolCallInterrupted, ToolCallStarted
from tests.e2e.processes import REPO, provider_env, start, stop

SESSION = "crash-mid-tool"
SCRIPT = {"responses": [{"tool_calls": [{"name": "workspace_test_run", "arguments": {},
                                         "id": "call_slowtests"}]}]}
ASK = {"model": "claude-sonnet-4-6", "max_tokens": 64,
       "messages": [{"role": "user", "content": "run the tests"}]}


def _events(db: Path) -> list[object]:
    recorder = SqliteRecorder(db)
    try:
        return [r.event for r in recorder.read_stream(f"session-{SESSION}")]
    finally:
        recorder.close()


def _wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _ask(url: str, outcome: dict[str, object]) -> None:
    """The client's request; it fails when the gateway dies under it."""
    try:
        outcome["response"] = httpx.post(url + "/v1/messages", json=ASK, timeout=60,
                                         headers={"x-claude-code-session-id": SESSION})
    except httpx.HTTPError as exc:
        outcome["error"] = exc


def test_tool_call_cut_by_kill_9_is_interrupted_after_restart(tmp_path):
    """After SIGKILL mid-call and a restart: verify passes, the call is interrupted (not
    re-run) and its turn aborted; the session's next turn is answered."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO)}
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    ws = tmp_path / "ws"
    ws.mkdir()
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    db = server_dir / "data" / "lynkr.db"
    group_file = ws / "group.pid"
    fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                             "--port", "0", "--script", str(script)], tmp_path, base,
                            "LISTENING", "stdout")
    env = {**base, "PORT": "0", "LOG_LEVEL": "warning", **provider_env("openai", int(fake_port)),
           "LYNKR_SERVER_TOOLS": "tests", "WORKSPACE_ROOT": str(ws),
           "WORKSPACE_TEST_COMMAND": "echo $$ > group.pid; sleep 30"}
    serve = [sys.executable, "-m", "lynkr", "serve"]
    lynkr, url = start(serve, server_dir, env, "lynkr: listening on ", "stderr")
    try:
        outcome: dict[str, object] = {}
        client = threading.Thread(target=_ask, args=(url, outcome))
        client.start()
        _wait_until(lambda: group_file.exists() and group_file.read_text().strip() != "")
        _wait_until(lambda: any(isinstance(e, ToolCallStarted) for e in _events(db)))
        stop(lynkr, signal.SIGKILL)
        client.join(timeout=30)
        assert "error" in outcome  # the client saw the gateway go, not an answer

        lynkr, url = start(serve, server_dir, env, "lynkr: listening on ", "stderr")
        events = _events(db)
        starts = [e for e in events if isinstance(e, ToolCallStarted)]
        assert [(s.tool, s.tool_call_id, s.effects, s.caller) for s in starts] == [
            ("workspace_test_run", starts[0].tool_call_id, True, "session")]
        interrupted = [e for e in events if isinstance(e, ToolCallInterrupted)]
        assert [(i.tool_call_id, i.reason, i.effects_possible) for i in interrupted] == [
            (starts[0].tool_call_id, "gateway_restarted", True)]
        aborted = [e for e in events if isinstance(e, StreamAborted)]
        assert [(a.turn, a.reason) for a in aborted] == [(starts[0].turn, "gateway_restarted")]
        assert events[-2:] == [interrupted[0], aborted[0]]
        httpx.request("DELETE", f"http://127.0.0.1:{fake_port}/_requests").raise_for_status()
        following = httpx.post(url + "/v1/messages", json=ASK, timeout=60,  # asked again
                               headers={"x-claude-code-session-id": SESSION})
        assert following.status_code == 200  # the session goes on
        sent = httpx.get(f"http://127.0.0.1:{fake_port}/_requests").json()
        history = sent[-1]["body"]["messages"]
        assert history[-2]["tool_calls"][0]["id"] == starts[0].tool_call_id
        assert history[-1]["role"] == "tool"  # the model is told, not the tool re-run
        assert "interrupted" in history[-1]["content"]
        assert "may have changed things" in history[-1]["content"]
        assert sum(isinstance(e, ToolCallStarted) for e in _events(db)) == 1
    finally:
        stop(lynkr)
        stop(fake)
        with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
            os.killpg(int(group_file.read_text()), signal.SIGKILL)  # orphaned by the kill -9
    verified = subprocess.run([sys.executable, "-m", "lynkr", "verify"], cwd=server_dir,
                              env=env, capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr
