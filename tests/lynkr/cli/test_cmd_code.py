"""`lynkr code`: the real Claude Code CLI against a gateway the command started itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventstore import SqliteRecorder
from eventstore.events.session import ModelResponded
from tests.e2e.processes import REPO, start, stop

CLAUDE_BIN = REPO / "tools" / ".node" / "node_modules" / ".bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_missing_claude_says_how_to_install_it(run_lynkr, tmp_path: Path):
    """No `claude` on PATH: one line naming the npm package, exit 2, no gateway started."""
    done = run_lynkr("code", "--", "-p", "hi", PATH=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "npm install -g @anthropic-ai/claude-code" in done.stderr
    assert not (tmp_path / "data" / "gateway.lock").exists()


@pytest.mark.slow
def test_code_starts_a_gateway_and_claude_code_and_the_turn_is_logged(tmp_path: Path):
    """`lynkr code -- -p …` starts `lynkr serve` (saying so), Claude Code answers from the
    scripted upstream, and the turn is in the gateway's log; the gateway is stopped by pid."""
    if not (CLAUDE_BIN / "claude").exists():
        pytest.skip("Claude Code is not installed in tools/.node (tests/e2e installs it)")
    home, workspace, data = tmp_path / "home", tmp_path / "ws", tmp_path / "data"
    home.mkdir()
    workspace.mkdir()
    fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                             "--port", "0"], tmp_path,
                            {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                            "LISTENING", "stdout")
    port = _free_port()
    env = {"PATH": f"{CLAUDE_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
           "PYTHONPATH": str(REPO), "CLAUDE_CONFIG_DIR": str(home / ".claude"),
           "TERM": "dumb", "IS_SANDBOX": "1", "ANTHROPIC_API_KEY": "anything",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
           "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
           "PORT": str(port), "LYNKR_DATA_DIR": str(data), "WORKSPACE_ROOT": str(workspace),
           "MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
           "PROMPT_CACHE_ENABLED": "false", "LOG_LEVEL": "warning"}
    pid = None
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lynkr", "code", "--", "-p", "say hello",
             "--output-format", "json"], cwd=workspace, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=240, check=False)
        lock = data / "gateway.lock"
        pid = int(lock.read_text()) if lock.exists() else None
        assert done.returncode == 0, done.stderr + done.stdout
        assert "started `lynkr serve` in the background" in done.stderr
        assert f"pid {pid}" in done.stderr
        assert (data / "serve.log").exists()
        output = json.loads(done.stdout)
        assert output["is_error"] is False
        session_id = str(output["session_id"])
        recorder = SqliteRecorder(data / "lynkr.db")
        try:
            events = [r.event for r in recorder.read_stream(f"session-{session_id}")]
        finally:
            recorder.close()
        assert any(isinstance(e, ModelResponded) for e in events), events
    finally:
        if pid is not None:
            _stop_pid(pid)
        stop(fake)


def _stop_pid(pid: int) -> None:
    """SIGTERM the background gateway and wait until it is gone (SIGKILL after 15 s)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
